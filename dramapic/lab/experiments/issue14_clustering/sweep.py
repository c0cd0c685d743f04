"""Sweep diarization settings with the re-scorer: 28 cross-corpus timelines (projection fitted without each
timeline's sources), 20 dev mixes (shipped projection), the bundled sample once and looped 4x (count only).

A variant is a JSON object of ``SpeakersConfig`` overrides plus two threshold knobs tied to each projection's
calibration ``P(same) = sigmoid(a + b * d)``: ``p_same`` (stop where the calibrated P(same) of the best pair falls
below it; 0.5 = the shipped equal-odds point) or ``thr_mult`` (multiplier on the calibrated distance).

Usage: python sweep.py OUT.jsonl [--refine] [--sets xc dev sample] VARIANT_JSON [VARIANT_JSON ...]
   or: python sweep.py OUT.jsonl --grid grid.json    (a JSON list of variants)
Each output line: {"variant": ..., "refine": bool, "files": [{name, folder, der_components, pred, ref, der,
gender_error...}], "sample": {x1, x4}}; a summary line per variant is printed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import rescore as R  # noqa: E402

SPECIAL = ("p_same", "thr_mult", "tag", "link")


def threshold_of(spec: dict, proj) -> float | None:
    a, b = proj.calibration
    if "p_same" in spec:
        p = float(spec["p_same"])
        return float((math.log(p / (1 - p)) - a) / b)
    if "thr_mult" in spec:
        return float(spec["thr_mult"]) * float(proj.cluster_threshold)
    return None


def options_for(item: R.Item, spec: dict):
    kw = {k: v for k, v in spec.items() if k not in SPECIAL}
    thr = threshold_of(spec, R.projection(item.proj_key))
    if thr is not None:
        kw["cluster_threshold"] = thr
    return R.variant(**kw)


def pooled_der(files) -> float:
    c = {k: sum(f["der_components"][k] for f in files) for k in ("total", "false alarm", "missed detection",
                                                                    "confusion")}
    return (c["false alarm"] + c["missed detection"] + c["confusion"]) / c["total"]


def summary(rec: dict) -> dict:
    files = rec["files"]
    out = {}
    for folder in [*R.FOLDERS, "dev_mixes"]:
        fs = [f for f in files if f["folder"] == folder]
        if fs:
            out[folder] = {"der": pooled_der(fs), "exact": sum(f["pred"] == f["ref"] for f in fs), "n": len(fs),
                           "over": sum(f["pred"] > f["ref"] for f in fs),
                           "under": sum(f["pred"] < f["ref"] for f in fs)}
    xc = [out[f] for f in R.FOLDERS if f in out]
    if xc:
        out["xc"] = {"der": float(np.mean([x["der"] for x in xc])), "exact": sum(x["exact"] for x in xc),
                     "n": sum(x["n"] for x in xc), "over": sum(x["over"] for x in xc),
                     "under": sum(x["under"] for x in xc)}
    return out


def fmt(spec: dict, s: dict, sample: dict) -> str:
    short = {"librispeech-train-clean-100": "libri", "dev_mixes": "dev"}
    parts = [f"{short.get(k, k)} {v['der']:.3f} {v['exact']}/{v['n']}" for k, v in s.items() if k != "xc"]
    head = ""
    if "xc" in s:
        x = s["xc"]
        head = f"XC {x['der']:.3f} {x['exact']}/{x['n']} (o{x['over']} u{x['under']}) | "
    return f"{json.dumps(spec)}: {head}{' | '.join(parts)} | sample {sample}"


def run(spec: dict, *, refine: bool, sets) -> dict:
    its = []
    if "xc" in sets:
        its += R.items()
    if "dev" in sets:
        its += [i for i in R.items(folders=(), dev=True)]
    rec = {"variant": spec, "refine": refine, "files": [], "sample": {}}
    R.MODE["link"] = spec.get("link", "window")
    for it in its:
        s = R.score(it, options_for(it, spec), refine=refine)
        rec["files"].append({"name": it.name, "folder": it.folder, "der_components": dict(s.der_components),
                             "der": s.der, "pred": s.speakers_pred, "ref": s.speakers_ref,
                             "gender_error": s.gender_error, "abstention": s.abstention,
                             "fse": s.female_share_error})
    if "sample" in sets:
        for it in R.sample_items():
            if it.cache.exists():
                rec["sample"][it.name[-2:]] = R.score(it, options_for(it, spec), refine=refine)
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--grid", type=Path)
    ap.add_argument("--refine", action="store_true")
    ap.add_argument("--sets", nargs="+", default=["xc", "dev", "sample"])
    args = ap.parse_args()
    specs = [json.loads(v) for v in args.variants]
    if args.grid:
        specs += json.loads(args.grid.read_text())
    with open(args.out, "a") as fh:
        for spec in specs:
            t0 = time.perf_counter()
            rec = run(spec, refine=args.refine, sets=args.sets)
            rec["summary"] = summary(rec)
            rec["seconds"] = time.perf_counter() - t0
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(f"[{rec['seconds']:.0f}s, +{R.stats['embedded']} emb] " + fmt(spec, rec["summary"], rec["sample"]),
                  flush=True)


if __name__ == "__main__":
    main()
