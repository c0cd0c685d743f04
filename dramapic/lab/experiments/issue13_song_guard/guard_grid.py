"""The song guard's grid (issue 13): the shipped default ensemble with and without the guard, on exp13's cached
inputs -- dev mixes (accuracy, F1 voice), the song check's 90 clips (% of audible song time called voice, per
subtype) and the 15 stage-1 cross-corpus timelines (accuracy per held-out source; their frames were never fitted).

Thresholds: AED speech (3 s centred mean) below ``a_sp``, AED singing at least ``a_sg``, or (YAMNet's singing /
choir / rap families at least ``f_sg`` and above its speech family); ``f_sg`` 2.0 switches the YAMNet clause off.

    python guard_grid.py          # the table in RESULTS.md
"""
import sys

import numpy as np

from guard_cache import FI, devmix, load, shipped, song_share, timeline_acc, uniform_filter1d


def ctx(v, n=301):
    return uniform_filter1d(np.asarray(v, float), n, mode="nearest")


def guarded(a_sp, a_sg, f_sg, n=301):
    def pred(it):
        p = shipped(it).copy()
        s = it.scores
        sp, sg = ctx(s.aed_speech, n), ctx(s.aed_singing, n)
        fs = ctx(np.max(it.fam[:, [FI["singing"], FI["choir"], FI["rap"]]], axis=1), n)
        fsp = ctx(it.fam[:, FI["speech"]], n)
        g = (sp < a_sp) & ((sg >= a_sg) | ((fs >= f_sg) & (fs > fsp)))
        p[g, 1] += p[g, 0]
        p[g, 0] = 0
        return p
    return pred


def main(which=("devmix", "song", "xc")):
    dev, song, xc = (load(k) for k in which)
    groups = sorted({it.meta["heldout"] for it in xc})
    print("xc groups:", " ".join(groups))

    def report(name, f):
        d, s = devmix(dev, f), song_share(song, f)
        accs = [timeline_acc([it for it in xc if it.meta["heldout"] == g], f)[0] for g in groups]
        print(f"{name:28s} dev {d} song ALL {s['ALL']} a_cappella {s.get('a_cappella')} sung {s.get('sung_vocals')} "
              f"rock {s.get('rock_song')} | xc " + " ".join(f"{a:.3f}" for a in accs), flush=True)

    report("shipped (no guard)", shipped)
    for a in [(0.1, 0.5, 0.5), (0.15, 0.4, 0.5), (0.2, 0.4, 0.4), (0.25, 0.3, 0.3), (0.1, 0.3, 0.3), (0.15, 0.5, 2.0),
              (0.15, 0.4, 2.0), (0.15, 0.3, 2.0), (0.15, 2.0, 0.5), (0.15, 2.0, 0.3)]:
        report(f"guard {a}", guarded(*a))


if __name__ == "__main__":
    main()
