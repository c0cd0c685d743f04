"""The projection's stopping distance calibrated per gender, as the product calibrates it for everyone.

``dramapic.lab.train_speakers.calibrate_threshold``'s recipe (speaker-grouped 2-fold LDAs on the train windows of the
window table, cluster pairs simulated on the held-out fold by ``simulate_pairs``), two fold splits, but the pairs
simulated among the men alone and among the women alone, and one logistic regression per gender; printed: the
median distances, and the distance at which P(same) is 0.25 (the pipeline's ``cluster_same_probability``).

    python gender_calibration.py W/window-table-15c086d7be26d1ef.npz OUT.txt

Imports the current package.
"""

from __future__ import annotations

import sys

import numpy as np
from pair_fit import SAME_PROBABILITY, same_speaker_fit, write_lines

from dramapic.lab import train_speakers


def main(table_path: str, out: str) -> None:
    table = dict(np.load(table_path))
    rows = train_speakers.projection_rows(table, clean_repeats=2)  # as the shipped fit: clean weighs as 2 copies
    x = table["emb"][rows].astype(np.float64)
    speaker, gender = table["speaker"][rows], table["gender"][rows]
    clip, start, source = table["clip"][rows].astype(np.int64), table["t0"][rows].astype(np.float64), \
        table["source"][rows]
    rng = np.random.default_rng(0)
    speakers = np.unique(speaker)
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"male": [], "female": []}
    for split in range(2):
        fold_of = dict(zip(speakers, rng.permutation(len(speakers)) % 2))
        fold = np.asarray([fold_of[s] for s in speaker])
        for k in range(2):
            fitted, held = fold != k, fold == k
            mean, components = train_speakers.fit_lda(x[fitted], speaker[fitted], 100)
            z = train_speakers._project(x[held], mean, components)
            for g, pairs in found.items():
                one = gender[held] == g
                pairs.append(train_speakers.simulate_pairs(
                    z[one], speaker[held][one], clip[held][one], start[held][one], source[held][one],
                    gender[held][one], np.random.default_rng(100 * split + k), n_pairs=4000))
    lines = []
    for g, parts in found.items():
        d = np.concatenate([p[0] for p in parts])
        same = np.concatenate([p[1] for p in parts])
        a, b, stop = same_speaker_fit(d, same)
        lines.append(f"{g:6s} pairs {len(d)}: different speakers median {np.median(d[~same]):.3f}, one speaker "
                     f"{np.median(d[same]):.3f}; P(same) = sigmoid({a:.3f} + {b:.3f} d); "
                     f"P(same) {SAME_PROBABILITY} at d = {stop:.4f}")
    write_lines(out, lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
