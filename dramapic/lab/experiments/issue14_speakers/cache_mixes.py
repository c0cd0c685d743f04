"""Cache stage-1 voice segments and window embeddings of labelled mixes (and plain media) for offline rescoring.

Runs the frozen product (``PYTHONPATH=/work/base``) once per file with a hook on
``dramapic.speakers.label_voice_segments``: the hook records the stage-1 voice segments, embeds windows at the
product's hop (0.75 s) and at the refinement hop (0.25 s, from which the refinement windows are taken offline),
scores them with the shipped gender model, then runs the product's own function so the baseline result is kept.

Usage: python cache_mixes.py OUT_DIR FILE [FILE ...]   (FILE: .opus of a mix, or any media file)
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import dramapic.speakers as sp  # noqa: E402
from dramapic.analysis import analyze  # noqa: E402

_orig = sp.label_voice_segments
_captured: dict = {}


def _hook(audio, *, sample_rate, segments, encoder, gender_model, options, projection=None, progress=None, **kw):
    seg = np.asarray([(float(s), float(e)) for s, e in segments], dtype=np.float64).reshape(-1, 2)
    out = {"segments": seg}
    for tag, hop in (("w75", options.hop_s), ("w25", options.refine_hop_s)):
        t, e, r = encoder._embed(audio, sample_rate, [tuple(x) for x in seg], options.window_s, hop)
        p = gender_model.predict_proba(e)[:, 0] if e.shape[0] else np.zeros(0)
        out.update({f"{tag}_times": t, f"{tag}_emb": e.astype(np.float32), f"{tag}_region": r, f"{tag}_pf": p})
    _captured.update(out)
    kwargs = {"sample_rate": sample_rate, "segments": segments, "encoder": encoder, "gender_model": gender_model,
              "options": options, "projection": projection}
    if progress is not None:
        kwargs["progress"] = progress
    return _orig(audio, **kwargs)


sp.label_voice_segments = _hook


def main(argv):
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for f in argv[1:]:
        f = Path(f)
        name = f.name.split(".")[0]
        if (out / f"{name}.npz").exists():
            continue
        _captured.clear()
        t0 = time.perf_counter()
        res = analyze(f)
        d = res.to_dict()
        np.savez(out / f"{name}.npz", **_captured)
        (out / f"{name}.result.json").write_text(json.dumps(d))
        print(f"{name}: {time.perf_counter() - t0:.1f} s, {len(_captured.get('w75_emb', []))} windows", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
