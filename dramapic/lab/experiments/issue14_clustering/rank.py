"""Rank sweep records: feasible = dev DER <= 0.155, dev count >= 16/20, looped sample x4 == 2 speakers (x1 == 2).
Sort by cross-corpus mean DER, then count exact. Usage: python rank.py results/*.jsonl [--top N] [--all]"""
import json, sys
recs = []
args = [a for a in sys.argv[1:] if not a.startswith("--")]
top = 25
if "--top" in sys.argv:
    top = int(sys.argv[sys.argv.index("--top") + 1]); args = [a for a in args if a != str(top)]
for f in args:
    for line in open(f):
        r = json.loads(line)
        recs.append(r)
def ok(r):
    d = r["summary"].get("dev_mixes"); s = r["sample"]
    return d and d["der"] <= 0.155 + 1e-9 and d["exact"] >= 16 and s.get("x4") == 2 and s.get("x1") == 2
feas = [r for r in recs if ok(r) or "--all" in sys.argv]
feas.sort(key=lambda r: (round(r["summary"]["xc"]["der"], 4), -r["summary"]["xc"]["exact"]))
short = {"librispeech-train-clean-100": "libri"}
print(f"{len(feas)} feasible of {len(recs)}")
for r in feas[:top]:
    s = r["summary"]; x = s["xc"]; d = s["dev_mixes"]
    per = " ".join(f"{short.get(k,k)[:5]} {v['der']:.3f} {v['exact']}/{v['n']}" for k, v in s.items() if k not in ("xc", "dev_mixes"))
    print(f"XC {x['der']:.3f} {x['exact']:2d}/28 o{x['over']} u{x['under']} | dev {d['der']:.3f} {d['exact']}/20 | {per} | {json.dumps(r['variant'])} refine={r['refine']}")
