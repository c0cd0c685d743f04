"""Markdown tables from results/variants.json and results/loo_*.json (pasted into RESULTS.md)."""
import json
import sys
from pathlib import Path

R = Path("/work/exp13/results")


def variants(path=R / "variants.json"):
    res = json.loads(path.read_text())
    subs = sorted({k for r in res.values() if r["song"] for k in r["song"] if k not in ("ALL", "VOCAL")})
    print("| variant | dev acc | F1 voice | F1 song | F1 noise | F1 silence | song->voice ALL % | VOCAL % | "
          + " | ".join(subs) + " |")
    print("|---" * (8 + len(subs)) + "|")
    for name, r in res.items():
        d, s = r["devmix"], r["song"]
        print(f"| {name} | {d['accuracy']:.4f} | {d['f1_voice']:.4f} | {d['f1_song']:.4f} | {d['f1_noise']:.4f} | "
              f"{d['f1_silence']:.4f} | {s['ALL']:.2f} | {s['VOCAL']:.2f} | "
              + " | ".join(f"{s.get(k, float('nan')):.2f}" for k in subs) + " |")
    groups = sorted(next(iter(res.values()))["xc"])
    print("\nCross-corpus timelines, models fitted on ALL sources (accuracy; not the held-out protocol):\n")
    print("| variant | " + " | ".join(groups) + " |")
    print("|---" * (1 + len(groups)) + "|")
    for name, r in res.items():
        print(f"| {name} | " + " | ".join(f"{r['xc'][g]['accuracy']:.3f}" for g in groups) + " |")


def loo(path):
    res = json.loads(Path(path).read_text())
    names = list(next(iter(res.values()))["scores"])
    print("| held-out source | dropped mixes | " + " | ".join(names) + " | best member | ensemble >= best |"
          " ens song->voice | ens voice recall |")
    print("|---" * (6 + len(names)) + "|")
    for g, r in res.items():
        sc = r["scores"]
        print(f"| {g} | {r['dropped_train_mixes']} | " + " | ".join(f"{sc[n]['accuracy']:.4f}" for n in names)
              + f" | {r['best_member']} | {'yes' if r['ensemble_at_least_best_member'] else '**NO**'} | "
              f"{sc['ensemble']['song_as_voice']:.4f} | {sc['ensemble']['voice_recall']:.4f} |")


if __name__ == "__main__":
    if sys.argv[1] == "variants":
        variants(Path(sys.argv[2]) if len(sys.argv) > 2 else R / "variants.json")
    else:
        loo(sys.argv[2])
