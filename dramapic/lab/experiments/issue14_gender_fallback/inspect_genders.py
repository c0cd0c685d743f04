"""Who got which gender, and why: per predicted speaker of one timeline (memoised protocol run of one seed), its
talk, the reference speakers and genders under its turns, the speaker-level decision (mean clipped logit,
confidence, share of windows on the decided side) and what its turns got.

    python inspect_genders.py DATA WORK CACHE SEED NAME [NAME ...]
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import harness
import numpy as np

import dramapic.analysis.diarization as diar
import dramapic.lab.crosscorpus as cc
from dramapic.config import load_pipeline


def reference(labels_csv: Path):
    rows = []
    with open(labels_csv, newline="") as f:
        for r in csv.DictReader(f):
            rows.append((float(r["start"]), float(r["end"]), r["label"], r.get("gender") or "", r.get("speaker") or ""))
    return rows


def overlap_by(ref, a, b):
    out = defaultdict(float)
    for s, e, label, gender, spk in ref:
        o = min(b, e) - max(a, s)
        if o > 0:
            out[f"{spk or label}:{gender[:1]}" if label == "voice" else label] += o
    return out


def main(argv):
    data, work, cache = map(Path, argv[:3])
    seed = int(argv[3])
    harness.install(cache)
    found = {t.name: t for t in cc.find_timelines(work / "timelines", dev_mixes=data / "dev_mixes")}
    from dramapic.lab.voice_windows import build_window_table
    table = build_window_table(manifest_csv=data / "manifest.csv", seed=seed, copies=2, cache=work)
    pipeline = load_pipeline(None)
    score = cc.voice_score_fn(pipeline)
    captured = {}
    real = diar.decide_turns

    def spy(model, *, turn_rows, turn_speakers, male_logits):
        out = real(model, turn_rows=turn_rows, turn_speakers=turn_speakers, male_logits=male_logits)
        captured.update(model=model, turn_rows=turn_rows, turn_speakers=turn_speakers, z=male_logits, out=out)
        return out

    diar.decide_turns = spy
    for name in argv[4:]:
        t = found[name]
        models = cc.fit_voice_models(table, cc.held_out(t), seed=seed)
        turn_times = []
        real_diarize = diar._diarize

        def keep(*a, real_diarize=real_diarize, turn_times=turn_times, **k):
            res = real_diarize(*a, **k)
            turn_times[:] = [[(ta, tb, c) for ta, tb, c, _ in turns] for turns in res[2]]
            return res
        diar._diarize = keep
        s = score(models, t)
        diar._diarize = real_diarize
        print(f"\n== {name} seed {seed}: DER {s.der:.3f} speakers {s.speakers_pred}/{s.speakers_ref} gender err "
              f"{s.gender_error:.3f} abst {s.abstention:.3f} fs pred {s.female_share_pred:.3f} ref "
              f"{s.female_share_ref:.3f}")
        ref = reference(t.labels_csv)
        model, z = captured["model"], np.asarray(captured["z"])
        decisions, by_spk = captured["out"]
        per = defaultdict(lambda: {"talk": 0.0, "rows": [], "ref": defaultdict(float), "turns": []})
        for rows_s, spk_s, times_s, dec_s in zip(captured["turn_rows"], captured["turn_speakers"], turn_times,
                                                 decisions):
            for rows, spk, (a, b, _c), d in zip(rows_s, spk_s, times_s, dec_s):
                p = per[spk]
                p["talk"] += b - a
                p["rows"].append(np.asarray(rows, dtype=np.int64))
                for k, v in overlap_by(ref, a, b).items():
                    p["ref"][k] += v
                zt = np.clip(z[np.asarray(rows, dtype=np.int64)], -model.logit_clip, model.logit_clip)
                p["turns"].append((b - a, d.gender, d.confidence, float(zt.mean()) if zt.size else np.nan))
        for spk in sorted(per, key=lambda k: -per[k]["talk"]):
            p = per[spk]
            rows = np.concatenate(p["rows"]) if p["rows"] else np.zeros(0, np.int64)
            zc = np.clip(z[rows], -model.logit_clip, model.logit_clip)
            d = model.decide(z[rows])
            side = (z[rows] > 0).mean()
            refs = ", ".join(f"{k} {v:.1f}" for k, v in sorted(p["ref"].items(), key=lambda kv: -kv[1])[:4])
            passed = by_spk.get(spk)
            print(f"  {spk}: {p['talk']:.1f} s, {len(rows)} windows, mean z {zc.mean():+.2f}, male side {side:.2f}, "
                  f"decision {d.gender} {d.confidence:.3f} -> {'PASSED' if passed else 'per turn'} | ref: {refs}")
            if not passed:
                got = defaultdict(float)
                for dur, g, conf, zt in p["turns"]:
                    got[g] += dur
                print("      turns:", dict(got), " turn z:", " ".join(f"{zt:+.1f}/{dur:.0f}s" for dur, g, conf, zt
                                                                    in p["turns"][:25]))


if __name__ == "__main__":
    main(sys.argv[1:])
