"""``../issue14_gender_fallback/harness.py`` (the stage-2 part of ``dramapic eval --cross-corpus`` over seeds,
memoised) with the speaker projection of each held-out fit replaced by a regularised LDA: variants ``shrinkNN``
(eigen solver, shrinkage NN/100, uncentred) and ``shrinkcNN`` (the same, centred on the training mean), combinable
with pipeline settings as in the harness; the pipeline is the current default's, so since `speaker-lda` v3 a bare
``shrink90`` merges to P(same) 0.25 (the runs in RESULTS.md named ``shrink90`` alone were made at 0.45: give
``speakers.cluster_same_probability=0.45`` to repeat them). The projections are fitted once per (excluded sources,
seed) and kept under PROJ (25 s each); the gender models and everything else come from the harness's memo (the
harness's own projection is still fitted first, once, and then replaced).

    cd ../issue14_gender_fallback
    python ../issue14_projection_shrinkage/harness_variants.py DATA WORK CACHE OUT 0,1,2 \
        shrink90+speakers.cluster_same_probability=0.2 speakers.cluster_same_probability=0.2 ...
"""
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'issue14_gender_fallback'))
import harness
import variants

import dramapic.lab.crosscorpus as cc
import dramapic.lab.train_speakers as ts

PROJ = Path(sys.argv[3]) / 'projection-variants'  # beside the harness memo

_PRODUCT_FIT_LDA = ts.fit_lda  # patched below while a variant's projection is fitted


def fit_shrunk(alpha, centred):
    def fit(x, speakers, dim, **_):  # the product passes its own shrinkage: this one wins
        mean, components = _PRODUCT_FIT_LDA(x, speakers, dim, shrinkage=alpha)
        return (np.asarray(x, np.float64).mean(axis=0) if centred else mean), components
    return fit


def projection_variant(alpha, centred=False):
    def make():
        real = cc.fit_voice_models
        def fit(table, excluded, *, seed=0, copies=2):
            models = real(table, excluded, seed=seed, copies=copies)
            stem = f"{'-'.join(sorted(excluded)) or 'none'}_s{seed}_c{copies}_a{alpha}{'c' if centred else ''}"
            def compute():
                keep = ts.fit_lda
                ts.fit_lda = fit_shrunk(alpha, centred)
                try:
                    projection = ts.fit_projection(table, excluded=excluded, seed=seed, clean_repeats=copies)[0]
                finally:
                    ts.fit_lda = keep
                print('fitted', stem, 'threshold', projection.cluster_threshold, flush=True)
                return projection

            projection = harness.stored(PROJ / f'{stem}.pkl', compute)
            return dataclasses.replace(models, projection=projection)
        cc.fit_voice_models = fit
        return lambda: setattr(cc, 'fit_voice_models', real)
    return make

for a in (0.5, 0.7, 0.9):
    variants.VARIANTS[f'shrink{int(a*100)}'] = projection_variant(a)
    variants.VARIANTS[f'shrinkc{int(a*100)}'] = projection_variant(a, centred=True)
harness.main(sys.argv[1:])
