"""Where the gender error of the cross-corpus timelines comes from, per timeline and folder: reference voice frames
of one known gender that stage 1 did not call voice, that got the other gender, or that were left unknown
(harness memo of ../issue14_gender_fallback; one seed).

    python voice_lost.py DATA WORK CACHE SEED [NAME ...]    # WORK, CACHE: as ../issue14_gender_fallback/harness.py
"""
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'issue14_gender_fallback'))
import harness

import dramapic.lab.crosscorpus as cc
import dramapic.lab.evaluate as ev
from dramapic.config import load_pipeline
from dramapic.lab.reference import load_reference

data, work, cache = map(Path, sys.argv[1:4])
seed = int(sys.argv[4])
harness.install(cache)
found = {t.name: t for t in cc.find_timelines(work / 'timelines', dev_mixes=data / 'dev_mixes')}
from dramapic.lab.voice_windows import build_window_table

table = build_window_table(manifest_csv=data / 'manifest.csv', seed=seed, copies=2, cache=work)
captured = {}
real = ev.score_result
def grab(result, reference, **kw):
    captured['segments'] = result['segments']; return real(result, reference, **kw)
ev.score_result = grab
score = cc.voice_score_fn(load_pipeline(None))
names = sys.argv[5:] or [n for n in found if not n.startswith('devmix')]
tot = defaultdict(float)
for name in sorted(names):
    t = found[name]
    s = score(cc.fit_voice_models(table, cc.held_out(t), seed=seed), t)
    ref = load_reference(t.labels_csv)
    n = len(ref.labels)
    pl = np.full(n, 3); pg = np.full(n, 0)
    for seg in captured['segments']:
        a, b = round(seg['start'] * 100), round(seg['end'] * 100)
        pl[a:b] = ['voice','song','noise','silence'].index(seg['label'])
        g = seg.get('gender'); pg[a:b] = 1 if g == 'female' else 2 if g == 'male' else 0
    keep = ev._collar_mask(ref.boundaries, n_frames=n, frame_s=0.01, collar_s=0.25)
    rg = np.asarray(ref.genders)
    single = keep & (np.asarray(ref.labels) == 0) & np.isin(rg, (1, 2))
    # reference gender codes as lab.evaluate's: 1 female, 2 male
    c = {'notvoice': (single & (pl != 0)).sum(), 'wrong': (single & (pl == 0) & (pg != 0) & (pg != rg)).sum(),
         'abst': (single & (pl == 0) & (pg == 0)).sum(), 'n': single.sum()}
    for k, v in c.items(): tot[(name.split('_')[0], k)] += v
    print(name, {k: int(v) for k, v in c.items()}, f'err {s.gender_error:.3f}')
for f in sorted({k[0] for k in tot}):
    n = tot[(f, 'n')]
    print(f, f"notvoice {tot[(f, 'notvoice')] / n:.3f} wrong {tot[(f, 'wrong')] / n:.3f} abst {tot[(f, 'abst')] / n:.3f}")
