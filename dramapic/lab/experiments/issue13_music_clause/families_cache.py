"""YAMNet's own AudioSet family posteriors on the 10 ms grid for every item of the voice-prior cache (dev mixes,
cross-corpus timelines, song-check clips), next to the stage-1 probabilities cached there.

    python families_cache.py STAGE1_CACHE OUT      # STAGE1_CACHE: issue14_voice_prior/cache.py's folder
"""
import pickle
import sys
from pathlib import Path

import numpy as np

from dramapic import media
from yamnet_head import families_member

src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
fam_member = families_member()
for f in sorted(src.glob("*.pkl")):
    target = out / f.name
    if target.exists():
        continue
    item = pickle.loads(f.read_bytes())
    audio = media.decode_audio(media.probe(Path(item["path"])))
    n = item["probs"].shape[0]
    frames = fam_member.family_frames(np.asarray(audio, np.float32), n).astype(np.float32)
    target.write_bytes(pickle.dumps(frames))
print("done")
