"""Markdown tables of RESULTS.md from results/xc_*.json. Usage: python make_tables.py FILE:VARIANT:LABEL ..."""
import json
import sys

FOLDERS = ["librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo", "mixed"]
SHORT = {"librispeech-train-clean-100": "LibriSpeech"}
rows = []
for arg in sys.argv[1:]:
    path, variant, label = arg.split(":", 2)
    rows.append((label, json.load(open(path))[variant]))
print("| setting | " + " | ".join(SHORT.get(f, f) for f in FOLDERS) + " | mean over sources | count exact (all) | over / under |")
print("|---|" + "---|" * (len(FOLDERS) + 3))
for label, r in rows:
    cells = [f"{r[f]['der']:.3f} ({r[f]['exact']}/{r[f]['n']})" for f in FOLDERS]
    m = r["_mean"]
    print(f"| {label} | " + " | ".join(cells) + f" | **{m['der']:.3f}** (pooled {m['pooled_der']:.3f}) | "
          f"{m['exact']}/{m['n']} = {100 * m['exact'] / m['n']:.0f} % | {m['over']} / {m['under']} |")
