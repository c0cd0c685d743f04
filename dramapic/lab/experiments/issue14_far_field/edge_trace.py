"""What the clustering saw on one held-out timeline: the held-out-fitted speaker space and gender model, this
checkout's stage 1 (run it from a checkout whose ``models`` is the stage 1 to trace), and for each
``cluster_windows`` call the windows, the cluster ids, the stopping distance and the tree's last merges.

    python edge_trace.py emodb_01 --data ../shared/data --timelines W/timelines --work W --out trace.pkl

(``W``: an ``eval --cross-corpus --work`` folder, whose cached window tables it reuses.)
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import linkage

from dramapic.analysis import clustering, diarization
from dramapic.config import load_pipeline
from dramapic.lab.crosscorpus import find_timelines, fit_voice_models, held_out, voice_score_fn
from dramapic.lab.voice_windows import GENDER_ROOMS, SPEAKER_ROOMS, build_window_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--timelines", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    timeline = next(t for t in find_timelines(args.timelines) if t.name == args.name)
    tables = build_window_tables(manifest_csv=args.data / "manifest.csv", rooms=(SPEAKER_ROOMS, GENDER_ROOMS), seed=0,
                                 copies=2, cache=args.work)
    models = fit_voice_models(tables[0], held_out(timeline), seed=0, gender_table=tables[-1])
    calls = []
    real = clustering.cluster_windows

    def spy(**kw):
        ids = real(**kw)
        calls.append({**kw, "ids": ids})
        return ids

    diarization.cluster_windows = spy  # diarization imported the name
    scores = voice_score_fn(load_pipeline(None))(models, timeline)
    print(f"{args.name}: DER {scores.der:.3f}, speakers {scores.speakers_pred} of {scores.speakers_ref}")
    for call in calls:
        ids, x = call["ids"], call["embeddings"].astype(np.float64)
        z = linkage(x / np.linalg.norm(x, axis=1, keepdims=True), method="average", metric="cosine")
        talk = [round(float(call["weights"][ids == k].sum()), 1) for k in range(ids.max() + 1)]
        print(f"  {len(ids)} windows -> {ids.max() + 1} clusters (talk s {talk}); stopping distance "
              f"{call['threshold']:.3f}; last merges {np.round(z[-4:, 2], 3).tolist()}")
    with open(args.out, "wb") as handle:
        pickle.dump({"calls": [{k: v for k, v in c.items() if k != "options"} for c in calls]}, handle)


if __name__ == "__main__":
    main()
