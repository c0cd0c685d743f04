"""Cross-corpus diarization figures on G's timelines: per held-out source, fit without it, score on its timelines.

For a timeline of source S the projection fitted without S is used (``proj/without_<S>.npz``); a ``mixed``
timeline uses the one fitted without every source of its cast (``proj/without_<S1>+<S2>....npz``). ``--shipped``
uses today's ``speaker-lda`` for every timeline (the baseline; not cross-corpus for LibriSpeech / Emo-DB, which
it was fitted on). Clustering variants are eval_dev's; ``@calib`` takes the stopping distance from the
projection's calibration.

Usage: PYTHONPATH=/work/base:/work/exp14d python eval_xc.py [--shipped] --variants baseline constrained@calib ...
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, "/work/exp14")

from dramapic.evaluate import aggregate, load_reference, score_result  # noqa: E402

from cache_adapter import load_result, load_timeline  # noqa: E402
from diarization import DiarizationOptions  # noqa: E402
from eval_dev import MIXES, CACHE, load_projection, variant  # noqa: E402
from rescore_lib import load_cache, run_cached, to_result  # noqa: E402

TL = Path("/work/exp14/timelines")
TL_CACHE = Path("/work/exp14/cache/timelines")
FOLDERS = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo", "mixed")
SOURCE_OF = {"libri": "librispeech-train-clean-100", "emodb": "emodb", "cv": "cv", "ravdess": "ravdess",
             "nemo": "nemo"}


def cast_sources(labels_csv: Path) -> list[str]:
    with open(labels_csv, newline="") as fh:
        spk = {s for r in csv.DictReader(fh) if r["label"] == "voice" for s in r["speaker"].split("+") if s}
    return sorted({SOURCE_OF[s.split("_")[0]] for s in spk})


_proj_cache: dict = {}


def projection_for(folder: str, labels_csv: Path, proj_dir: Path, shipped: bool):
    if shipped:
        key = None
    else:
        key = "without_" + "+".join(cast_sources(labels_csv) if folder == "mixed" else [folder])
    if key not in _proj_cache:
        _proj_cache[key] = load_projection(None if key is None else proj_dir / f"{key}.npz")
    return _proj_cache[key]


def options_for(name: str, meta: dict, penalty: float | None = None) -> DiarizationOptions:
    base, _, thr = name.partition("@")
    if thr == "calib":
        opt = dataclasses.replace(variant(base), cluster_threshold=float(meta["cluster_threshold"]))
    else:
        opt = variant(name)
    return DiarizationOptions(cluster=opt) if penalty is None else \
        DiarizationOptions(cluster=opt, switch_penalty=penalty)


def run(variant_name: str, *, proj_dir: Path, shipped: bool, pf_fn=None, folders=FOLDERS):
    """Per folder, the FileScores of every cached timeline (refinement windows through G's memoised
    ``crosscorpus._refinement_windows``, embedded on demand)."""
    import crosscorpus as xc
    from cache_adapter import _p_female

    fn = pf_fn or _p_female
    rows = {}
    for t in xc.timelines(folders):
        labels = t.labels_csv
        proj, meta = projection_for(t.folder, labels, proj_dir, shipped)
        arrays = t.arrays()
        c = load_timeline(t.cache.with_suffix(".npz"), p_female_fn=fn)

        def refine_fn(starts, where, t=t, arrays=arrays):
            tt, ee, rr, _ = xc._refinement_windows(t, arrays, starts, where)
            return tt, ee, rr, fn(ee)

        lab = run_cached(c, options=options_for(variant_name, meta), projection=proj, refine_fn=refine_fn)
        rows.setdefault(t.folder, []).append(
            score_result(to_result(c, t.shipped_result(), lab), load_reference(labels)))
    return rows


def summarise(rows: dict) -> dict:
    out = {}
    for folder, scores in rows.items():
        rep = aggregate(scores)
        out[folder] = {"der": rep.der, "n": len(scores),
                       "exact": sum(s.speakers_pred == s.speakers_ref for s in scores),
                       "over": sum(s.speakers_pred > s.speakers_ref for s in scores),
                       "under": sum(s.speakers_pred < s.speakers_ref for s in scores),
                       "counts": [f"{s.speakers_pred}/{s.speakers_ref}" for s in scores]}
    allf = [s for v in rows.values() for s in v]
    if allf:
        out["_mean"] = {"der": float(np.mean([v["der"] for v in out.values()])),
                        "exact": sum(v["exact"] for v in out.values()), "n": len(allf),
                        "over": sum(v["over"] for v in out.values()),
                        "under": sum(v["under"] for v in out.values()),
                        "pooled_der": aggregate(allf).der}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proj-dir", type=Path, default=HERE / "proj")
    ap.add_argument("--shipped", action="store_true")
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    allres = {}
    for v in args.variants:
        s = summarise(run(v, proj_dir=args.proj_dir, shipped=args.shipped))
        allres[v] = s
        m = s["_mean"]
        print(f"{v:28s} mean DER {m['der']:.3f} (pooled {m['pooled_der']:.3f}) exact {m['exact']}/{m['n']} "
              f"over {m['over']} under {m['under']} | " + "  ".join(
                  f"{k[:6]} {x['der']:.3f} {x['exact']}/{x['n']}" for k, x in s.items() if k != "_mean"),
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(allres, indent=1))


if __name__ == "__main__":
    main()
