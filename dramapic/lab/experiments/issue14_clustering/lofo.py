"""Leave-one-folder-out check of the selection: for each of the 6 cross-corpus folders, choose among the feasible
variants (dev mixes DER <= 0.155, count >= 16/20, sample x1 and x4 = 2 speakers) the best by mean DER over the
OTHER 5 folders (ties: more exact counts there), and score it on the held-out folder. Also: per-folder wins of
the top variants against the shipped setting. Usage: python lofo.py results/*.jsonl"""
import json, sys
import numpy as np

FOLD = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo", "mixed")
SH = {"librispeech-train-clean-100": "libri"}
recs = {}
for f in [a for a in sys.argv[1:] if not a.startswith("--")]:
    for line in open(f):
        r = json.loads(line)
        if r["refine"]:
            recs[json.dumps(r["variant"], sort_keys=True)] = r
def ok(r):
    d = r["summary"]["dev_mixes"]; s = r["sample"]
    return d["der"] <= 0.155 + 1e-9 and d["exact"] >= 16 and s.get("x4") == 2 and s.get("x1") == 2
feas = [r for r in recs.values() if ok(r)]
base = recs[json.dumps({}, sort_keys=True)] if json.dumps({}, sort_keys=True) in recs else None
print(f"{len(feas)} feasible variants of {len(recs)}")
COUNT_FIRST = "--count-first" in sys.argv
def key5(r, out):
    fs = [f for f in FOLD if f != out]
    k = (round(np.mean([r["summary"][f]["der"] for f in fs]), 4), -sum(r["summary"][f]["exact"] for f in fs))
    return k[::-1] if COUNT_FIRST else k
best_all = min(feas, key=lambda r: (round(r["summary"]["xc"]["der"], 4), -r["summary"]["xc"]["exact"])[::(-1 if COUNT_FIRST else 1)])
print("chosen on all 6:", json.dumps(best_all["variant"]))
ders, ex = [], 0
for out in FOLD:
    r = min(feas, key=lambda r: key5(r, out))
    s = r["summary"][out]; ders.append(s["der"]); ex += s["exact"]
    b = best_all["summary"][out]
    bb = base["summary"][out] if base else None
    print(f"held out {SH.get(out, out):8s}: chosen {json.dumps(r['variant'])} -> {s['der']:.3f} {s['exact']}/{s['n']}"
          f" | chosen-on-all {b['der']:.3f} {b['exact']}/{b['n']}" + (f" | shipped {bb['der']:.3f} {bb['exact']}/{bb['n']}" if bb else ""))
print(f"LOFO estimate: mean DER {np.mean(ders):.3f}, exact {ex}/28")
if base:
    print("\nfolder wins vs shipped (DER lower / equal / higher) of the 10 best feasible:")
    for r in sorted(feas, key=lambda r: (round(r["summary"]["xc"]["der"], 4), -r["summary"]["xc"]["exact"]))[:10]:
        d = [r["summary"][f]["der"] - base["summary"][f]["der"] for f in FOLD]
        print(f"  {sum(x < -1e-4 for x in d)}/{sum(abs(x) <= 1e-4 for x in d)}/{sum(x > 1e-4 for x in d)}  "
              f"XC {r['summary']['xc']['der']:.3f} {r['summary']['xc']['exact']}/28  {json.dumps(r['variant'])}")
