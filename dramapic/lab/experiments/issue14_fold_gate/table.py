"""Mean over seeds of the harness's run files: python table.py OUT SEEDS VARIANT ..."""
from __future__ import annotations

import json
import statistics as st
import sys
from pathlib import Path


def figures(run: dict) -> dict:
    rows = {r["set"]: r for r in run["summary"]}
    mean = next(r for k, r in rows.items() if k.startswith("mean"))
    files = [f for f in run["files"] if f["folder"] != "dev_mixes"]
    dev = [f for f in run["files"] if f["folder"] == "dev_mixes"]
    return {"der": mean["der"], "exact": sum(f["speakers_pred"] == f["speakers_ref"] for f in files),
            "over": sum(f["speakers_pred"] > f["speakers_ref"] for f in files),
            "under": sum(f["speakers_pred"] < f["speakers_ref"] for f in files),
            "gender": 100 * mean["gender_error"], "fs": mean["female_share_error"],
            "abst": 100 * mean["abstention"], "mixed": rows["mixed"]["der"],
            "dev_der": rows["dev_mixes"]["der"], "dev_exact": sum(f["speakers_pred"] == f["speakers_ref"] for f in dev),
            "dev_gender": 100 * rows["dev_mixes"]["gender_error"]}


def main(argv: list[str]) -> None:
    out, seeds = Path(argv[0]), argv[1].split(",")
    keys = ("der", "exact", "over", "under", "gender", "fs", "abst", "mixed", "dev_der", "dev_exact", "dev_gender")
    print("variant".ljust(44), *[k.rjust(9) for k in keys])
    for name in argv[2:]:
        runs = [figures(json.loads((out / f"{name}_s{s}.json").read_text())) for s in seeds]
        print(name[:44].ljust(44), *[f"{st.mean(r[k] for r in runs):9.3f}" for k in keys])
        for s, r in zip(seeds, runs):
            print(f"  seed {s}".ljust(44), *[f"{r[k]:9.3f}" for k in keys])


if __name__ == "__main__":
    main(sys.argv[1:])
