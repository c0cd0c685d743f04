"""How far apart held-out speakers' window sets lie in the speaker space, by set size: the simulated cluster pairs
the stopping distance is calibrated on (``train_speakers.simulate_pairs``), one set size at a time, with a
logistic calibration per size.

    python pair_spread.py --data ../shared/data --work W --excluded emodb

(``W``: an ``eval --cross-corpus --work`` folder, whose cached near-room window table it reuses.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from dramapic.lab import train_speakers as ts
from dramapic.lab.voice_windows import SPEAKER_ROOMS, build_window_tables

SIZES = (2, 4, 8, 16, 32, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--excluded", default="", help="comma-separated voice sources left out (the held-out one)")
    parser.add_argument("--splits", type=int, default=2)
    args = parser.parse_args()

    excluded = frozenset(s for s in args.excluded.split(",") if s)
    (table,) = build_window_tables(manifest_csv=args.data / "manifest.csv", rooms=(SPEAKER_ROOMS,), seed=0, copies=2,
                                   cache=args.work)
    rows = ts.projection_rows(table, excluded=excluded, clean_repeats=2)
    x, speaker = table["emb"][rows].astype(np.float64), table["speaker"][rows]
    clip, start = table["clip"][rows].astype(np.int64), table["t0"][rows].astype(np.float64)
    source, gender = table["source"][rows], table["gender"][rows]
    rng = np.random.default_rng(0)
    speakers = np.unique(speaker)
    dist, same, size_of = [], [], []
    for _ in range(args.splits):
        fold_of = dict(zip(speakers, rng.permutation(len(speakers)) % 2))
        fold = np.asarray([fold_of[s] for s in speaker])
        for k in range(2):
            train, test = fold != k, fold == k
            mean, components = ts.fit_lda(x[train], speaker[train], 100, shrinkage=ts.PROJECTION_SHRINKAGE)
            z = ts._project(x[test], mean, components)
            for size in SIZES:
                ts.SET_SIZES = (size,)  # simulate_pairs draws its set size from this
                d, s = ts.simulate_pairs(z, speaker[test], clip[test], start[test], source[test], gender[test], rng,
                                         n_pairs=3000)
                dist.append(d)
                same.append(s)
                size_of.append(np.full(len(d), size))
    d, s, n = map(np.concatenate, (dist, same, size_of))
    print(f"held out: {sorted(excluded) or 'nothing'}")
    for size in SIZES:
        m = n == size
        lr = LogisticRegression(C=1e4, class_weight="balanced").fit(d[m, None], s[m])
        a, b = float(lr.intercept_[0]), float(lr.coef_[0, 0])
        print(f"{size:3d} windows: same {d[m & s].mean():.3f} (sd {d[m & s].std():.3f}, q90 "
              f"{np.quantile(d[m & s], 0.9):.3f}); different {d[m & ~s].mean():.3f} (sd {d[m & ~s].std():.3f}, q10 "
              f"{np.quantile(d[m & ~s], 0.1):.3f}); equal odds at {-a / b:.3f}, P(same) 0.25 at "
              f"{(np.log(1 / 3) - a) / b:.3f}")


if __name__ == "__main__":
    main()
