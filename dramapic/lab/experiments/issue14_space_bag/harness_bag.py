"""``../issue14_gender_fallback/harness.py`` with each held-out fit's speaker projection replaced by the joint space
of ``space_bag.py`` (variants ``bagAA``: alpha = AA/100, the v3 space's weight); the emotion-space blocks are read
from ``../issue14_emotion_scatter``'s cache (CACHE/projection-emotion, fitted there if missing), the joint
calibrations kept under CACHE/projection-bag.

    cd ../issue14_gender_fallback
    python ../issue14_space_bag/harness_bag.py DATA WORK CACHE OUT 0,1,2 bag50 bag50+speakers.cluster_same_probability=0.30
"""
import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "issue14_emotion_scatter"))
sys.path.insert(0, str(HERE.parent / "issue14_gender_fallback"))
import harness
import harness_emotion  # noqa: F401 (registers the emoGG variants this one builds on)
import variants
from space_bag import GAMMA, ORTHOGONAL, fit_bag

import dramapic.lab.crosscorpus as cc

CACHE = Path(sys.argv[3])


def bag_variant(alpha):
    def make():
        real = cc.fit_voice_models
        undo = variants.VARIANTS[f"emo{round(GAMMA * 100)}o{ORTHOGONAL}"]()
        emotion_fit = cc.fit_voice_models  # the emotion variant's fit, wrapping ``real``
        undo()

        def fit(table, excluded, *, seed=0, copies=2):
            first = real(table, excluded, seed=seed, copies=copies)
            second = emotion_fit(table, excluded, seed=seed, copies=copies).projection
            stem = f"{'-'.join(sorted(excluded)) or 'none'}_s{seed}_c{copies}_a{alpha}"
            def compute():
                projection = fit_bag(table, excluded, seed=seed, copies=copies, alpha=alpha,
                                     first=first.projection, second_components=second._components)
                print("fitted", stem, "threshold", projection.cluster_threshold, flush=True)
                return projection

            projection = harness.stored(CACHE / "projection-bag" / f"{stem}.pkl", compute)
            return dataclasses.replace(first, projection=projection)
        cc.fit_voice_models = fit
        return lambda: setattr(cc, "fit_voice_models", real)
    return make


for a in (0.25, 0.5, 0.75):
    variants.VARIANTS[f"bag{round(a * 100)}"] = bag_variant(a)

if __name__ == "__main__":
    harness.main(sys.argv[1:])
