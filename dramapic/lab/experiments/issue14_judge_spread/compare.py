"""How much of a cross-corpus figure is the protocol's own spread: the same pipeline's ``dramapic eval
--cross-corpus --json`` runs side by side (other training seeds, other CPUs, other settings), per folder and per
timeline, and which timelines' speaker count is right in every run.

    python compare.py NAME=RUN.json [NAME=RUN.json ...]
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict

DEV_MIXES = "dev_mixes"


def num(value) -> float:
    """A figure from the JSON (NaN is written as null)."""
    return float("nan") if value is None else float(value)


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main(pairs: list[str]) -> None:
    runs = {name: load(path) for name, path in (p.split("=", 1) for p in pairs)}
    names = list(runs)
    print("held-out mean per run: DER / counts exact / gender err % / abstain % / female-share err pts")
    for name, run in runs.items():
        files = [f for f in run["files"] if f["folder"] != DEV_MIXES]
        dev = [f for f in run["files"] if f["folder"] == DEV_MIXES]
        mean = next(r for r in run["summary"] if r["set"] == "mean (held-out)")
        exact = sum(f["speaker_count_error"] == 0 for f in files)
        dev_exact = sum(f["speaker_count_error"] == 0 for f in dev)
        dev_row = next((r for r in run["summary"] if r["folder"] == DEV_MIXES), None)
        dev_der = num(dev_row["der"]) if dev_row else float("nan")
        print(f"  {name:>12}: DER {num(mean['der']):.3f}"
              f"  counts {exact} of {len(files)}  gender {100 * num(mean['gender_error']):.1f}"
              f"  abstain {100 * num(mean['abstention']):.1f}  female-share {num(mean['female_share_error']):.1f}"
              f"  | dev DER {dev_der:.3f}, {dev_exact} of {len(dev)}")

    # per set as the product's summary pools it (not the mean of the files' DER)
    per_set = {name: {r["set"]: num(r["der"]) for r in run["summary"]} for name, run in runs.items()}
    print("\nDER per set (as `dramapic eval --cross-corpus` prints it):")
    print(f"  {'set':>16} " + " ".join(f"{n:>12}" for n in names) + "   spread")
    for name_of_set in per_set[names[0]]:
        ders = [per_set[n].get(name_of_set, float("nan")) for n in names]
        print(f"  {name_of_set:>16} " + " ".join(f"{d:12.3f}" for d in ders) + f"   {max(ders) - min(ders):.3f}")

    print("\nSpeaker count per held-out timeline (predicted / reference), * where the runs disagree "
          "(a timeline missing from a run, - there, counts as neither right nor wrong in every run):")
    rows: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for name, run in runs.items():
        for f in run["files"]:
            if f["folder"] != DEV_MIXES:
                rows[f["name"]][name] = (f["speakers_pred"], f["speakers_ref"])
    always, never, flips = 0, 0, 0
    for timeline in sorted(rows):
        got = [rows[timeline].get(n) for n in names]
        right = [g[0] == g[1] for g in got if g is not None]
        always += len(right) == len(names) and all(right)
        never += len(right) == len(names) and not any(right)
        flips += len({g[0] for g in got if g}) > 1
        mark = "*" if len({g[0] for g in got if g}) > 1 else " "
        print(f"  {mark} {timeline:>12} " + " ".join(f"{g[0]}/{g[1]:<10}" if g else f"{'-':>12}" for g in got))
    print(f"\nright in every run: {always} of {len(rows)}; wrong in every run: {never}; "
          f"count differs between runs: {flips}")


if __name__ == "__main__":
    main(sys.argv[1:])
