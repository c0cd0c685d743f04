"""Which small clusters the share folding merges, and how similar they were (issue 14 diagnostic).

For each named cross-corpus timeline: stage 1, then stage 2 with models fitted without its sources (as
``dramapic eval --cross-corpus`` does), logging every fold of ``clustering._fold_small`` / ``_constrained_merge``'s
bound as (talk of the folded cluster s, talk of the target, centroid cosine similarity, mean P(female) of both).

    python foldlog.py WORK DATA cv_06 nemo_03 ...     # WORK: the --work folder of eval --cross-corpus
"""

import dataclasses
import sys
from pathlib import Path
import numpy as np
import dramapic.analysis.clustering as C
from dramapic.config import load_pipeline
from dramapic.lab.crosscorpus import fit_voice_models, find_timelines
from dramapic.lab.voice_windows import build_window_table
from dramapic import media
from dramapic.analysis.analyze import analyze_audio, refine_voice
LOG=[]
orig_fold_into=C._fold_into
def logging_fold(t, s, *, stats, alive, label):
    sums, cnt, pfs, talk = stats
    sim=float(C.l2(sums[t]) @ C.l2(sums[s]))
    LOG.append(("fold", round(float(talk[s]),1), "into", round(float(talk[t]),1), "sim", round(sim,3), "pf", round(float(pfs[s]/cnt[s]),2), round(float(pfs[t]/cnt[t]),2)))
    return orig_fold_into(t, s, stats=stats, alive=alive, label=label)
C._fold_into=logging_fold
pipe=load_pipeline(None)
work, data = Path(sys.argv[1]), Path(sys.argv[2])
table = build_window_table(manifest_csv=data / 'manifest.csv', seed=0, cache=work)
found = {t.name: t for t in find_timelines(work / 'timelines')}
stage1_only=dataclasses.replace(pipe, stage2=dataclasses.replace(pipe.stage2, gender=False), speakers=dataclasses.replace(pipe.speakers, enabled=False))
cache={}
for n in sys.argv[3:]:
    t=found[n]; ex=frozenset(t.sources)
    if ex not in cache: cache[ex]=fit_voice_models(table, ex)
    m=cache[ex]
    audio=media.decode_audio(media.probe(t.audio))
    seg,_,_=analyze_audio(audio, stage1_only)
    LOG.clear()
    merged,_=refine_voice(audio, seg, settings=pipe.speakers.for_run(), projection=m.projection, gender_model=m.gender_model)
    n_pred=len({s.speaker for s in merged if s.speaker})
    print(n, "pred", n_pred, "folds:", [l[1:] for l in LOG if l[0]=="fold"], flush=True)
