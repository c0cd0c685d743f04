"""The members' mean in the stage-1 ensemble (issue 13, ``stage1.members_mean_share``): the shipped stacker's
probabilities mixed with the plain mean of its four members' probabilities, scored on exp13's cached inputs
(`../issue13_songs/cache13.py`, under /work/exp13/cache; loaded by `../issue13_song_guard/guard_cache.py`), every
variant decided as the pipeline decides (song guard, smoothing).

* the 15 stage-1 cross-corpus timelines (one per voice / music source, dev rows only; 8 of the sources were never
  in the shipped members' or stacker's training data: HELD_OUT_FOR_SHIPPED) -- accuracy over non-silent frames
  outside a 0.25 s collar, per source, for each share and for each member alone;
* the share chosen leave-one-source-out (best mean accuracy on the other 14 sources, scored on the held-out one);
* the 20 dev mixes (accuracy, F1 voice), the song check's 90 clips (% of song time called voice) and the 99
  source-tagged training mixes (speech over vocal / instrumental beds: voice recall, song called voice).

    python members_mean.py
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "issue13_song_guard"))
from guard_cache import devmix, load, shipped, song_share, timeline_acc  # noqa: E402

from dramapic.analysis import stage1 as S  # noqa: E402

MEMBERS = ["stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr"]
HELD_OUT_FOR_SHIPPED = ["music:digabi", "music:everythingisfree", "music:oga_lofi", "music:singularity", "music:usdx",
                        "voice:cv", "voice:nemo", "voice:ravdess"]
SHARES = [0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0]


def decided(predict):
    """The pipeline's decision: the song guard (default settings) before smoothing (smoothing is the scorers')."""
    return lambda it: S.song_guard(predict(it), it.scores, speech_below=0.15, singing_from=0.4, context_s=3.0)


def mixed(share):
    def predict(it):
        mean = np.mean([it.shipped[m] for m in MEMBERS], axis=0)
        return (1 - share) * shipped(it) + share * mean
    return predict


def main():
    dev, song, xc, train = load("devmix"), load("song"), load("xc"), load("train")
    groups = sorted({it.meta["heldout"] for it in xc})
    by_group = {g: [it for it in xc if it.meta["heldout"] == g] for g in groups}
    rows = {}
    print(f"{'share':>6} {'dev acc':>8} {'F1 v':>6} {'song%':>6} {'xc15':>7} {'held8':>7} {'min8':>7} "
          f"{'train acc':>9} {'v rec':>6} {'s->v':>6}")
    for share in SHARES:
        f = decided(mixed(share))
        rows[share] = {g: timeline_acc(its, f)[0] for g, its in by_group.items()}
        acc, f1 = devmix(dev, f)
        tr_acc, cm = timeline_acc(train, f)
        held = [rows[share][g] for g in HELD_OUT_FOR_SHIPPED]
        print(f"{share:>6} {acc:>8.4f} {f1:>6.4f} {song_share(song, f)['ALL']:>6} "
              f"{np.mean(list(rows[share].values())):>7.4f} {np.mean(held):>7.4f} {min(held):>7.4f} {tr_acc:>9.4f} "
              f"{cm[0, 0] / cm[0].sum():>6.4f} {cm[1, 0] / cm[1].sum():>6.4f}", flush=True)
    chosen = {g: max(SHARES, key=lambda s: np.mean([rows[s][h] for h in groups if h != g])) for g in groups}
    print("leave-one-source-out choice of the share:", chosen)
    print("leave-one-source-out scored mean:", round(float(np.mean([rows[chosen[g]][g] for g in groups])), 4),
          "| stacker alone:", round(float(np.mean([rows[0.0][g] for g in groups])), 4))
    # each member alone (no guard, as eval --variants decides members) against the ensemble, per source
    members = {m: {g: timeline_acc(its, lambda it, m=m: it.shipped[m])[0] for g, its in by_group.items()}
               for m in MEMBERS}
    print(f"\n{'source':24s} {'stacker':>8} {'share .5':>8} " + " ".join(f"{m[7:]:>12}" for m in MEMBERS)
          + "  best member  ensemble >= best  (* = never in the shipped models' training data)")
    for g in groups:
        best = max(MEMBERS, key=lambda m: members[m][g])
        print(f"{g + (' *' if g in HELD_OUT_FOR_SHIPPED else ''):24s} {rows[0.0][g]:>8.4f} {rows[0.5][g]:>8.4f} "
              + " ".join(f"{members[m][g]:>12.4f}" for m in MEMBERS)
              + f"  {best[7:]:>11}  {'yes' if rows[0.5][g] >= members[best][g] else 'NO'}")


if __name__ == "__main__":
    main()
