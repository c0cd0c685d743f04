"""``../issue14_gender_fallback/harness.py`` with each held-out fit's speaker projection replaced by
``emotion_scatter.fit_lda_emotion`` (variants ``emoGG``: gamma GG/100); projections kept under CACHE/projection-emotion.

    cd ../issue14_gender_fallback
    python ../issue14_emotion_scatter/harness_emotion.py DATA WORK CACHE OUT 0,1,2 emo50 emo100 ...
"""
import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "issue14_gender_fallback"))
import harness
import variants
from emotion_scatter import EMOTION_PREFIXES, fit_lda_emotion

import dramapic.lab.crosscorpus as cc
import dramapic.lab.train_speakers as ts

PROJ = Path(sys.argv[3]) / "projection-emotion"
LIBRI = "librispeech-train-clean-100"


def emotion_variant(gamma, prefixes=EMOTION_PREFIXES, tag="", orthogonal=0, dev_without=frozenset()):
    def make():
        real = cc.fit_voice_models

        def fit(table, excluded, *, seed=0, copies=2):
            models = real(table, excluded, seed=seed, copies=copies)
            excluded = excluded or dev_without  # the dev mixes' projection fitted without these sources
            stem = f"{'-'.join(sorted(excluded)) or 'none'}_s{seed}_c{copies}_g{gamma}{tag}"
            def compute():
                keep = ts.fit_lda
                ts.fit_lda = lambda x, speakers, dim, **kw: fit_lda_emotion(x, speakers, dim, gamma=gamma,
                                                                            prefixes=prefixes, orthogonal=orthogonal)
                try:
                    projection = ts.fit_projection(table, excluded=excluded, seed=seed, clean_repeats=copies)[0]
                finally:
                    ts.fit_lda = keep
                print("fitted", stem, "threshold", projection.cluster_threshold, flush=True)
                return projection

            projection = harness.stored(PROJ / f"{stem}.pkl", compute)
            return dataclasses.replace(models, projection=projection)
        cc.fit_voice_models = fit
        return lambda: setattr(cc, "fit_voice_models", real)
    return make


for g in (0.0, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.25, 0.5, 1.0):
    variants.VARIANTS[f"emo{round(g * 100)}"] = emotion_variant(g)
    # ``emoGGrn``: RAVDESS and nEMO only (Emo-DB's ten actors left out of S_emo)
    variants.VARIANTS[f"emo{round(g * 100)}rn"] = emotion_variant(g, ("ravdess_", "nemo_"), "rn")
    # ``emoGGdl``: the dev mixes clustered in the projection fitted without LibriSpeech (a diagnostic)
    variants.VARIANTS[f"emo{round(g * 100)}dl"] = emotion_variant(g, dev_without=frozenset({LIBRI}))
    # ``emoGGoK``: S_emo kept out of the top K between-speaker directions of the other speakers' means
    for k in (16, 32, 64):
        variants.VARIANTS[f"emo{round(g * 100)}o{k}"] = emotion_variant(g, tag=f"o{k}", orthogonal=k)

if __name__ == "__main__":
    harness.main(sys.argv[1:])
