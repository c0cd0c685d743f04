"""Who went where on chosen cross-corpus timelines, under a variant of ``run.py`` (``base``: the folding without a
gate, ``foldgate00``), with every fold logged (talk of the small cluster, of its target, and their calibrated
P(same)); a cluster the gate kept shows as a speaker of its own.

    python who_went_where.py DATA WORK CACHE SEED VARIANT cv_05 mixed_02 ...
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import run

import dramapic.lab.crosscorpus as cc
import dramapic.lab.evaluate as ev
from dramapic.config import load_pipeline
from dramapic.lab.reference import load_reference


def main(argv):
    data, work, cache, seed, variant, names = (Path(argv[0]), Path(argv[1]), Path(argv[2]), int(argv[3]), argv[4],
                                               set(argv[5:]))
    run.harness.install(cache)
    # the gate's logging variant with gate 0 folds as the product did before the gate
    run.variants.VARIANTS["foldgate00" if variant == "base" else variant]()
    from dramapic.lab.voice_windows import SHIPPED_COPIES, build_window_table
    table = build_window_table(manifest_csv=data / "manifest.csv", seed=seed, copies=SHIPPED_COPIES, cache=work)
    found = [t for t in cc.find_timelines(work / "timelines", dev_mixes=data / "dev_mixes") if t.name in names]
    captured = {}
    real = ev.score_result

    def grab(result, reference, **kw):
        captured["segments"] = result["segments"]
        return real(result, reference, **kw)
    ev.score_result = grab
    score = cc.voice_score_fn(load_pipeline(None))
    for t in found:
        models = cc.fit_voice_models(table, cc.held_out(t), seed=seed)
        del run.LOG[:]
        s = score(models, t)
        ref = load_reference(t.labels_csv)
        segs = [g for g in captured["segments"] if g["label"] == "voice"]
        ref_spk = sorted({sp for r in ref.rows for sp in r.speakers})
        pred_spk = sorted({g["speaker"] for g in segs if g["speaker"]})
        m = np.zeros((len(ref_spk), len(pred_spk)))
        gend = {}
        for r in ref.rows:
            for sp, gg in zip(r.speakers, r.genders):
                gend[sp] = gg
                for g in segs:
                    o = min(r.end, g["end"]) - max(r.start, g["start"])
                    if o > 0 and g["speaker"]:
                        m[ref_spk.index(sp), pred_spk.index(g["speaker"])] += o
        print(f"== {t.name}  DER {s.der:.3f}  pred {s.speakers_pred} ref {s.speakers_ref}")
        for entry in run.LOG:
            print("   fold", f"{entry['talk']:5.1f} s into {entry['into']:5.1f} s  P(same) {entry['p_same']:.3f}")
        pg = {}
        for g in segs:
            pg.setdefault(g["speaker"], set()).add(g["gender"])
        print("      " + " ".join(f"{p:>8}" for p in pred_spk))
        print("      " + " ".join(f"{'/'.join(sorted(map(str, pg[p]))):>8}" for p in pred_spk))
        for i, sp in enumerate(ref_spk):
            print(f"{sp[:18]:>18} {gend[sp][:1]} " + " ".join(f"{v:8.1f}" for v in m[i]))


if __name__ == "__main__":
    main(sys.argv[1:])
