"""Prints ``penalty_grid.py``'s JSON as the RESULTS.md tables: per penalty, the ensemble's accuracy per folder and
their mean, the member check (folders where a member alone is better), and the class F1 on the cross-corpus
timelines (mean over folders) and on the dev mixes.

    python table.py OUT.json
"""
import json
import sys

LABELS = ("voice", "song", "noise", "silence")
with open(sys.argv[1]) as handle:
    results = json.load(handle)
penalties = sorted(results, key=lambda p: ("/" in p, [float(v) for v in p.split("/")]))
folders = [f for f in results[penalties[0]] if f != "dev_mixes"]
print("penalty " + " ".join(f"{f[:7]:>8}" for f in folders) + "  xc mean  member-check-lost  "
      + " ".join(f"xcF1 {k[:3]}" for k in LABELS) + "  dev acc " + " ".join(f"dvF1 {k[:3]}" for k in LABELS))
for p in penalties:
    rows = results[p]
    acc = [rows[f]["ensemble"]["accuracy"] for f in folders]
    lost = [f[:6] for f in folders
            if max(v["accuracy"] for k, v in rows[f].items() if k.startswith("stage1-")) > rows[f]["ensemble"]["accuracy"]]
    xf1 = [sum(rows[f]["ensemble"]["f1"][k] for f in folders) / len(folders) for k in LABELS]
    dev = rows["dev_mixes"]["ensemble"]
    print(f"{p:>7} " + " ".join(f"{a:8.4f}" for a in acc) + f"  {sum(acc) / len(acc):7.4f}  {','.join(lost) or '-':>17}  "
          + " ".join(f"{v:8.4f}" for v in xf1) + f"  {dev['accuracy']:7.4f} "
          + " ".join(f"{dev['f1'][k]:8.4f}" for k in LABELS))
