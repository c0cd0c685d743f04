"""A "speech guard" (the song guard's mirror image) on cached stage-1 probabilities: where FireRedVAD's AED hears
speech and no singing over a centred window, song (and optionally noise) probability moves to voice, after the
product's song guard and before its smoothing. One JSON line per point: dev mixes, the 28 cross-corpus timelines
(pooled and per folder), the song check. Measured and not shipped (RESULTS.md).

    python ../issue14_voice_prior/cache.py ../shared/data WORK/timelines CACHE     # 10 min, once
    python grid.py CACHE '[{}, {"speech_from": 0.9, "singing_below": 0.1, "context_s": 1.0}, ...]'

Keys of a point: speech_from, singing_below, context_s (the AED window means), optional move (labels whose mass
goes to voice, default ["song"]), silero_from (also require the windowed Silero speech), music_below.
"""
import dataclasses
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from dramapic.analysis import stage1
from dramapic.analysis.analyze import segments_from_frames
from dramapic.analysis.stage1 import STAGE1_LABELS
from dramapic.config import load_pipeline
from dramapic.lab.evaluate import _class_metrics, _stage1_accuracy, score_result
from dramapic.lab.reference import load_reference
from dramapic.lab.songcheck import score_song_frames

pipe = load_pipeline(None)
files = [pickle.loads(f.read_bytes()) for f in sorted(Path(sys.argv[1]).glob('*.pkl'))]
refs = {d['name']: load_reference(Path(d['labels'])) for d in files if d['labels']}
print(len(files), 'files', {k: sum(d['kind'] == k for d in files) for k in ('dev', 'xc', 'song')}, flush=True)
PLAIN = stage1.stage1_frame_labels
def speech_guard(p, s, speech_from, singing_below, context_s, move=('song',), silero_from=None, music_below=None):
    size = max(1, round(context_s / 0.01) | 1)
    sp = uniform_filter1d(np.asarray(s.aed_speech, np.float64), size=size, mode='nearest')
    si = uniform_filter1d(np.asarray(s.aed_singing, np.float64), size=size, mode='nearest')
    g = (sp >= speech_from) & (si < singing_below)
    if silero_from is not None:
        g &= uniform_filter1d(np.asarray(s.silero_speech, np.float64), size=size, mode='nearest') >= silero_from
    if music_below is not None:
        g &= uniform_filter1d(np.asarray(s.aed_music, np.float64), size=size, mode='nearest') < music_below
    out = p.copy()
    for lab in move:
        j = STAGE1_LABELS.index(lab)
        out[g, 0] += out[g, j]; out[g, j] = 0
    return out
def run(g):
    cfg = pipe.stage1
    conf = {'dev': np.zeros((4, 4)), 'xc': np.zeros((4, 4))}
    perfolder = {}; songs = []
    for d in files:
        p = d['probs']
        if cfg.song_guard:
            p = stage1.song_guard(p, d['scores'], speech_below=cfg.song_guard_speech_below,
                                  singing_from=cfg.song_guard_singing_from, context_s=cfg.song_guard_context_s)
        if g:
            p = speech_guard(p, d['scores'], **g)
        p2, lab = PLAIN(p, d['scores'], settings=dataclasses.replace(cfg, song_guard=False))
        if d['kind'] == 'song':
            songs.append((d['name'][4:], lab, d['scores'].energy_db)); continue
        segs = segments_from_frames(lab, p2, duration=d['duration'])
        res = {'schema': 'dramapic/1', 'source': {'duration': d['duration']},
               'segments': [{'start': s.start, 'end': s.end, 'label': s.label, 'gender': None, 'speaker': None} for s in segs]}
        c = np.asarray(score_result(res, refs[d['name']]).confusion, float)
        conf[d['kind']] += c
        if d['kind'] == 'xc':
            f = d['name'].rsplit('_', 1)[0]; perfolder[f] = perfolder.get(f, 0) + c
    out = {}
    for k, c in conf.items():
        out[k + '_acc'] = round(_stage1_accuracy(c), 4)
        m = _class_metrics(c)
        out[k + '_f1v'] = round(m['voice']['f1'], 4); out[k + '_recv'] = round(m['voice']['recall'], 4)
        out[k + '_v2s'] = int(c[0, 1]); out[k + '_s2v'] = int(c[1, 0]); out[k + '_n2v'] = int(c[2, 0])
    for f, c in sorted(perfolder.items()):
        out['xc_' + f] = round(_stage1_accuracy(c), 4)
    sc = score_song_frames(songs)
    out['song_voice_%'] = round(100 * sum(sc.voice_s.values()) / sum(sc.audible_s.values()), 3)
    out['song_by'] = {k: round(100 * sc.voice_s[k] / sc.audible_s[k], 2) for k in sc.voice_s if sc.voice_s[k] > 0}
    return out
for g in json.loads(sys.argv[2]):
    g2 = {k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items()}
    print(json.dumps({**g, **run(g2)}), flush=True)
