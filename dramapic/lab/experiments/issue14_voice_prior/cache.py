"""Cache the default stage 1 probabilities and detector scores of the 20 dev mixes, the 28 cross-corpus timelines and
the song-check clips (about 10 min on 2 cores).

    python cache.py ../shared/data WORK/timelines CACHE
"""
import sys, pickle
from pathlib import Path
import numpy as np
from dramapic.config import load_pipeline
from dramapic import media
from dramapic.analysis import loaders, detectors
from dramapic.analysis.streaming import ChunkedStage1
from dramapic.lab.songcheck import songcheck_clips
pipe = load_pipeline(None)
model = loaders.stage1_model(pipe.stage1)
out = Path(sys.argv[3]); out.mkdir(exist_ok=True)
def full(path):
    audio = media.decode_audio(media.probe(path))
    first = ChunkedStage1(model, expected_s=len(audio) / 16000)
    first.feed(np.asarray(audio, np.float32))
    return first.finish(), len(audio) / 16000
items = []
for p in sorted((Path(sys.argv[1]) / 'dev_mixes').glob('devmix_*.opus')):
    items.append(('dev', p.stem, p, p.with_name(p.stem + '.labels.csv')))
for p in sorted(Path(sys.argv[2]).glob('*/*.opus')):
    items.append(('xc', p.stem, p, p.with_name(p.stem + '.labels.csv')))
for i, c in enumerate(songcheck_clips(data_root=Path(sys.argv[1]))):
    items.append(('song', f'{i:03d}_{c.subtype}', c.path, None))
print(len(items), flush=True)
for kind, name, p, lab in items:
    f = out / f'{kind}__{name}.pkl'
    if f.exists(): continue
    if kind == 'song':
        audio = media.decode_audio(media.probe(p))
        scores = detectors.run_detectors(audio)
        probs = model.frame_probabilities(audio, scores); dur = len(audio) / 16000
    else:
        (scores, probs), dur = full(p)
    pickle.dump(dict(kind=kind, name=name, path=str(p), labels=str(lab) if lab else None, scores=scores,
                     probs=np.asarray(probs, np.float32), duration=dur), open(f, 'wb'))
print('done')
