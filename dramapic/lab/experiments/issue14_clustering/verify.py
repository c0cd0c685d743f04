"""Verify the re-scorer against main's end-to-end analyze (cache_e2e.py outputs in cache/): same stage-1 voice
segments and first-pass windows as exp14's cache, and identical turns / scores with the shipped settings and the
shipped projection. Usage: python verify.py NAME ..."""
import json, sys
from pathlib import Path
import numpy as np
import rescore as R

items = {i.name: i for i in R.items(dev=True)}
for name in sys.argv[1:]:
    it = items[name]
    mine = np.load(R.HERE / "cache" / f"{name}.npz"); old = np.load(it.cache)
    same_seg = mine["seg"].shape == old["seg"].shape and np.abs(mine["seg"] - old["seg"]).max() < 1e-9
    de = np.abs(mine["emb"] - old["emb"]).max() if mine["emb"].shape == old["emb"].shape else None
    dp = np.abs(mine["pitch"] - old["pitch"]).max() if mine["pitch"].shape == old["pitch"].shape else None
    prod = json.loads((R.HERE / "cache" / f"{name}.result.json").read_text())
    ref = R.load_reference(it.labels)
    s_prod = R.score_result(prod, ref)
    it_all = R.Item(it.name, it.folder, it.cache, it.audio, it.labels, "all")
    s_re = R.score(it_all, R.SHIPPED, refine=True)
    lab = R.label(it_all, R.SHIPPED, R.projection("all"))
    ms = [(round(s['start'], 3), round(s['end'], 3), s['label'], s['gender'], s['speaker'])
          for s in R.to_result(it_all, lab)['segments']]
    ps = [(round(s['start'], 3), round(s['end'], 3), s['label'], s.get('gender'), s.get('speaker'))
          for s in prod['segments']]
    print(f"{name}: segments same {same_seg}, max|emb diff| {de}, max|pitch diff| {dp}; product DER {s_prod.der:.4f} "
          f"count {s_prod.speakers_pred}/{s_prod.speakers_ref} gerr {s_prod.gender_error:.4f} | re-scorer DER "
          f"{s_re.der:.4f} count {s_re.speakers_pred}/{s_re.speakers_ref} gerr {s_re.gender_error:.4f} | "
          f"segment lists identical {ms == ps}")
