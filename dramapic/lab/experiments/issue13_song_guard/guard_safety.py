"""Where the song guard would fire on reference voice (the risk: dialogue turned into song), and what it does to
the shipped ensemble on exp13's 99 source-tagged training mixes (speech over vocal and instrumental music beds,
sung stems over other beds; 9,311 s) -- plus the YAMNet rap family's range on every cached set.

    python guard_safety.py
"""
import numpy as np

from guard_cache import FI, load, shipped, timeline_acc, uniform_filter1d
from guard_grid import guarded


def ctx(v, n=301):
    return uniform_filter1d(np.asarray(v, float), n, mode="nearest")


def main():
    sets = {"xc": load("xc"), "train": load("train")}
    for name, items in sets.items():
        for a_sp, a_sg in [(0.1, 0.5), (0.15, 0.4), (0.2, 0.4), (0.25, 0.3)]:
            fired = {0: [0, 0], 1: [0, 0], 2: [0, 0]}
            for it in items:
                g = (ctx(it.scores.aed_speech) < a_sp) & (ctx(it.scores.aed_singing) >= a_sg)
                for c in fired:
                    m = it.labels == c
                    fired[c][0] += (g & m).sum()
                    fired[c][1] += m.sum()
            print(name, a_sp, a_sg, "fires on reference voice / song / noise:",
                  {c: f"{100 * a / max(b, 1):.2f}% of {b / 100:.0f} s" for c, (a, b) in fired.items()})
    for label, f in [("shipped", shipped), ("guard .1/.5", guarded(0.1, 0.5, 2.0)),
                     ("guard .15/.4", guarded(0.15, 0.4, 2.0))]:
        acc, cm = timeline_acc(sets["train"], f)
        print("train mixes", label, round(acc, 4), "voice recall", round(cm[0, 0] / cm[0].sum(), 4),
              "song->voice", round(cm[1, 0] / cm[1].sum(), 4), "voice->song", round(cm[0, 1] / cm[0].sum(), 4))
    for kind in ("train", "xc", "song"):
        rap = np.concatenate([ctx(it.fam[:, FI["rap"]]) for it in load(kind)])
        print(kind, "YAMNet rap family (3 s mean) percentiles 50/90/99/99.9:",
              np.round(np.percentile(rap, [50, 90, 99, 99.9]), 3))


if __name__ == "__main__":
    main()
