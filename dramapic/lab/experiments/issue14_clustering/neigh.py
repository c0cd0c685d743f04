"""One-knob-at-a-time neighbourhood of a candidate (all refine=True records). Usage: python neigh.py 'JSON' files"""
import json, sys
cand = json.loads(sys.argv[1]); recs = {}
for f in sys.argv[2:]:
    for line in open(f):
        r = json.loads(line)
        if r["refine"]: recs[json.dumps(r["variant"], sort_keys=True)] = r
DEF = {"p_same": 0.5, "gender_link_confidence": 0.85, "min_speaker_share": 0.15, "gender_link_min_s": 3,
       "max_small_speaker_s": 30, "cluster_fine_threshold": 0.4, "link": "window"}
def norm(v): return {**DEF, **v}
C = norm(cand)
SH = {"librispeech-train-clean-100": "libri"}
rows = []
for r in recs.values():
    v = norm(r["variant"])
    diff = [k for k in DEF if v[k] != C[k]]
    if len(diff) <= 1 and not (diff == ["link"]):
        s = r["summary"]; x = s["xc"]; d = s["dev_mixes"]
        per = " ".join(f"{SH.get(k,k)[:5]} {s[k]['der']:.3f} {s[k]['exact']}/{s[k]['n']}" for k in ("librispeech-train-clean-100","emodb","cv","ravdess","nemo","mixed"))
        rows.append((diff[0] if diff else "", v[diff[0]] if diff else "", f"XC {x['der']:.3f} {x['exact']}/28 o{x['over']} u{x['under']} | dev {d['der']:.3f} {d['exact']}/20 | x1/x4 {r['sample'].get('x1')}/{r['sample'].get('x4')} | {per}"))
for k, val, line in sorted(rows, key=lambda t: (t[0], str(t[1]))):
    print(f"{k or '(candidate)':24s} {str(val):6s} {line}")
