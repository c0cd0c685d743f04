"""The same question as pair_distances.py on the clips the models are fitted on, before any timeline is mixed.

From the cross-corpus window table (every voice clip of both manifests, clean and augmented windows through the
pipeline's encoder: ``W/window-table-*.npz`` that ``dramapic eval --cross-corpus --work W`` builds), in the shipped
``speaker-lda`` space: clusters of 8 windows of one speaker and condition, per source and split, two speakers of
one gender (3,000 random draws) against one speaker's two disjoint 8-window halves, per gender; the distance is the
clustering's average linkage (1 - <m_a, m_b>).

    python clip_pairs.py W/window-table-15c086d7be26d1ef.npz OUT.txt

Imports the current package (the projection and the pipeline's stopping distance).
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np
from pair_fit import write_lines

from dramapic.analysis import loaders
from dramapic.analysis.clustering import stopping_distance
from dramapic.config import load_pipeline


def main(table: str, out: str) -> None:
    pipeline = load_pipeline(None)
    projection = loaders.speaker_projection(pipeline.speakers.projection)
    threshold = stopping_distance(pipeline.speakers, projection)
    z = np.load(table)
    x = projection.transform(z["emb"].astype(np.float64))
    rng = np.random.default_rng(0)
    lines = [f"stopping distance {threshold:.4f}; clusters of 8 windows; median distance (share below it)"]
    for source in sorted(set(z["source"])):
        for split in ("train", "dev"):
            for condition in ("clean", "aug"):
                chosen = (z["split"] == split) & (z["source"] == source) & (z["condition"] == condition)
                rows: dict[str, list[int]] = defaultdict(list)
                for i in np.flatnonzero(chosen):
                    rows[z["speaker"][i]].append(int(i))
                speakers = [s for s, r in rows.items() if len(r) >= 16]
                if len(speakers) < 3:
                    continue
                gender = {s: z["gender"][rows[s][0]] for s in speakers}
                found: dict[str, list[float]] = defaultdict(list)
                for s in speakers:
                    order = rng.permutation(rows[s])
                    found[f"same {gender[s]}"].append(1.0 - x[order[:8]].mean(0) @ x[order[8:16]].mean(0))
                for _ in range(3000):
                    a, b = rng.choice(speakers, 2, replace=False)
                    if gender[a] == gender[b]:
                        found[f"diff {gender[a]}"].append(1.0 - x[rng.choice(rows[a], 8, replace=False)].mean(0)
                                                          @ x[rng.choice(rows[b], 8, replace=False)].mean(0))
                cells = [f"{k} {np.median(v):.3f} ({np.mean(np.array(v) < threshold):.2f}, n {len(v)})"
                         for k, v in sorted(found.items()) if k.endswith(("female", "male"))]
                lines.append(f"{source} {split} {condition} ({len(speakers)} speakers): " + "; ".join(cells))
    write_lines(out, lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
