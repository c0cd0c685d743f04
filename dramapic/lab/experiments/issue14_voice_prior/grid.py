"""Score stage 1 on the cached probabilities for a grid of label log-prior shifts (and Viterbi penalties): dev mixes,
cross-corpus timelines (pooled and per folder) and the song check, one JSON line per point.

    python grid.py CACHE '[{"bias": [0.25, 0, 0, 0], "penalty": 20}, ...]' > grid.jsonl

bias is in STAGE1_LABELS order (voice, song, noise, silence); penalty defaults to the pipeline's.
"""
import sys, pickle, dataclasses, json
from pathlib import Path
import numpy as np
from dramapic.config import load_pipeline
from dramapic.analysis.stage1 import STAGE1_LABELS
from shifted import install
from dramapic.analysis.analyze import segments_from_frames
from dramapic.lab.evaluate import score_result, _class_metrics, _stage1_accuracy
from dramapic.lab.reference import load_reference
from dramapic.lab.songcheck import score_song_frames
pipe = load_pipeline(None)
files = [pickle.load(open(f, 'rb')) for f in sorted(Path(sys.argv[1]).glob('*.pkl'))]
refs = {d['name']: load_reference(Path(d['labels'])) for d in files if d['labels']}
print(len(files), 'files', {k: sum(d['kind'] == k for d in files) for k in ('dev', 'xc', 'song')})
def run(bias, penalty=None):
    # the song guard, then the shift, then the product's smoothing (shifted.py)
    frame_labels = install(dict(zip(STAGE1_LABELS, map(float, bias))))
    cfg = dataclasses.replace(pipe.stage1, switch_penalty=pipe.stage1.switch_penalty if penalty is None else penalty)
    conf = {'dev': np.zeros((4, 4)), 'xc': np.zeros((4, 4))}
    perfolder = {}
    songs = []
    for d in files:
        p2, lab = frame_labels(d['probs'], d['scores'], settings=cfg)
        if d['kind'] == 'song':
            songs.append((d['name'][4:], lab, d['scores'].energy_db)); continue
        segs = segments_from_frames(lab, p2, duration=d['duration'])
        res = {'schema': 'dramapic/1', 'source': {'duration': d['duration']},
               'segments': [{'start': s.start, 'end': s.end, 'label': s.label, 'gender': None, 'speaker': None} for s in segs]}
        fs = score_result(res, refs[d['name']])
        c = np.asarray(fs.confusion, float)
        conf[d['kind']] += c
        if d['kind'] == 'xc':
            folder = d['name'].rsplit('_', 1)[0]
            perfolder[folder] = perfolder.get(folder, 0) + c
    out = {}
    for k, c in conf.items():
        out[k + '_acc'] = round(_stage1_accuracy(c), 4)
        m = _class_metrics(c)
        out[k + '_f1v'] = round(m['voice']['f1'], 4)
        out[k + '_recv'] = round(m['voice']['recall'], 4)
        out[k + '_acc4'] = round(np.trace(c) / c.sum(), 4)
        out[k + '_f1sil'] = round(m['silence']['f1'], 4)
        out[k + '_f1noise'] = round(m['noise']['f1'], 4)
        out[k + '_f1song'] = round(m['song']['f1'], 4)
    for f, c in sorted(perfolder.items()):
        out['xcacc_' + f] = round(_stage1_accuracy(c), 4)
        out['xcrec_' + f] = round(c[0, 0] / c[0].sum(), 4)
        out['xcn_' + f] = [float(sum(c[i, i] for i in [0, 1, 2])), float(c[[0, 1, 2]].sum())]
    sc = score_song_frames(songs)
    out['song_voice_%'] = round(100 * sum(sc.voice_s.values()) / sum(sc.audible_s.values()), 3)
    out['song_by'] = {k: round(100 * sc.voice_s[k] / sc.audible_s[k], 2) for k in sc.voice_s}
    return out
grid = json.loads(sys.argv[2])
for g in grid:
    r = run(g['bias'], g.get('penalty'))
    print(json.dumps({**g, **r}), flush=True)
