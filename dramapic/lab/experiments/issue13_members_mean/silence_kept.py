"""Follow-up to members_mean.py: how much of the members' mean's gain is bridged pauses? The same mix, but the
stacker's silence probability kept and only voice / song / noise taken from the mix; voice segments counted after
the pipeline's smoothing (fewer = more pauses bridged).

    python silence_kept.py
"""
import sys, numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "issue13_song_guard"))
from guard_cache import load, shipped, timeline_acc, devmix, song_share, smooth
from dramapic.analysis import stage1 as S
M4 = ["stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr"]
HELD = ["music:digabi", "music:everythingisfree", "music:oga_lofi", "music:singularity", "music:usdx", "voice:cv", "voice:nemo", "voice:ravdess"]
def guard(f): return lambda it: S.song_guard(f(it), it.scores, speech_below=0.15, singing_from=0.4, context_s=3.0)
def mixed(t, keep_sil):
    def f(it):
        s = shipped(it); m = np.mean([it.shipped[k] for k in M4], axis=0)
        b = (1 - t) * s + t * m
        if keep_sil:
            ns = b[:, :3] / np.maximum(b[:, :3].sum(axis=1, keepdims=True), 1e-9)
            b = np.concatenate([(1 - s[:, 3:4]) * ns, s[:, 3:4]], axis=1)
        return b
    return f
dev, song, xc = load("devmix"), load("song"), load("xc")
groups = sorted({it.meta["heldout"] for it in xc})
def nseg(items, f):
    n = 0
    for it in items:
        path = smooth(f(it)); v = path == 0
        n += int(np.sum(v[1:] & ~v[:-1]) + v[0])
    return n
for name, f in [("stacker", shipped), ("mean .5", mixed(0.5, False)), ("mean .5 keep-sil", mixed(0.5, True)), ("mean .75 keep-sil", mixed(0.75, True))]:
    fg = guard(f)
    accs = {g: timeline_acc([it for it in xc if it.meta["heldout"] == g], fg)[0] for g in groups}
    d = devmix(dev, fg)
    print(f"{name:18s} dev {d} xc15 {np.mean(list(accs.values())):.4f} held8 {np.mean([accs[g] for g in HELD]):.4f} min {min(accs.values()):.4f} voice segs xc {nseg(xc, fg)} dev {nseg(dev, fg)}", flush=True)
