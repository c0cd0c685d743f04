"""Stacker regularisation on the held-out voice sources where a member beat the ensemble (C=1 in run13)."""
import sys; sys.path.insert(0, "/work/exp13")
import lab13 as L
train, xc = L.load("train"), L.load("xc")
import os; FIX = os.environ.get("FIX", "fam,omni")
for g in sys.argv[2:]:
    kind, src = g.split(":")
    key = "voice_group" if kind == "voice" else "music_group"
    fit = [it for it in train if it.meta[key] != src]
    if os.environ.get("SRCFOLD"):
        # cross-fit by voice SOURCE: out-of-fold member probabilities then come from corpora the member never heard
        groups = sorted({it.meta["voice_group"] for it in fit})
        for it in fit:
            it.meta["fold"] = groups.index(it.meta["voice_group"]) % 2
    test = [it for it in xc if it.meta["heldout"] == g]
    for C in [float(c) for c in sys.argv[1].split(",")]:
        m, _ = L.fit_stage1(fit, trained=("det",), fixed=tuple(FIX.split(",")), step=6, stacker_C=C)
        s = L.timeline_scores(test, m.predict)
        print(g, "C", C, s["accuracy"], "voice recall", s["voice_recall"], "song->voice", s["song_as_voice"], flush=True)
