"""One variant, all-source fit, dev mixes + song check only: python quick13.py TRAINED FIXED (comma lists, '-' = none)."""
import sys; sys.path.insert(0, "/work/exp13")
import lab13 as L
tr = () if sys.argv[1] == "-" else tuple(sys.argv[1].split(","))
fx = () if sys.argv[2] == "-" else tuple(sys.argv[2].split(","))
m, info = L.fit_stage1(L.load("train"), trained=tr, fixed=fx)
d = L.devmix_scores(L.load("devmix"), m.predict)
print(tr, fx, {k: v for k, v in d.items() if k != "confusion"}, L.song_voice_share(L.load("song"), m.predict), flush=True)
