"""Markdown rows for chosen variants (refine=True records). Usage: python table.py 'LABEL=JSON' ... -- files"""
import json, sys
i = sys.argv.index("--"); specs = sys.argv[1:i]; files = sys.argv[i + 1:]
recs = {}
for f in files:
    for line in open(f):
        r = json.loads(line)
        if r["refine"]: recs[json.dumps(r["variant"], sort_keys=True)] = r
F = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo", "mixed")
print("| setting | libri | emodb | cv | ravdess | nemo | mixed | **XC mean DER** | **XC count exact** | o/u | dev DER | dev count | sample x1/x4 |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for s in specs:
    cut = s.index("={"); label, js = s[:cut], s[cut + 1:]
    r = recs[json.dumps(json.loads(js), sort_keys=True)]; m = r["summary"]; x = m["xc"]; d = m["dev_mixes"]
    cells = " | ".join(f"{m[f]['der']:.3f} ({m[f]['exact']}/{m[f]['n']})" for f in F)
    print(f"| {label} | {cells} | **{x['der']:.3f}** | **{x['exact']}/28** | {x['over']}/{x['under']} | {d['der']:.3f} | {d['exact']}/20 | {r['sample']['x1']}/{r['sample']['x4']} |")
