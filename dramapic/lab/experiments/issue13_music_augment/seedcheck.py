"""One more draw: stage 1 refitted without SOURCE at another training seed, with or without the music
augmentation, and the song check's member check on SOURCE's clips (as ``dramapic eval --refit-stage1`` prints it,
which always refits at the shipped seed 0). The augmentation draws from each mix's rng, so every later draw of the
mix (placements, levels) changes with it: the seed-0 comparison is augmentation and a new draw of the mixes at
once, and a second seed tells them apart.

Usage: python seedcheck.py DATA WORK SOURCE SEED {plain,augmented}
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from musaug import AUGMENTATION

from dramapic.config import load_pipeline
from dramapic.lab.songcheck import run_song_check, songcheck_clips
from dramapic.lab.stage1_refits import refit_without


def main(argv: list[str]) -> None:
    data, work, source, seed, how = Path(argv[0]), Path(argv[1]), argv[2], int(argv[3]), argv[4]
    clock = time.perf_counter()
    fitted = refit_without(data=data, work=work, music_sources=[source], seed=seed,
                           music_augmentation=AUGMENTATION if how == "augmented" else None)
    print(f"fit: {fitted.root} in {time.perf_counter() - clock:.0f} s", flush=True)
    clips = [c for c in songcheck_clips(data_root=data) if c.source == source]
    check = run_song_check(clips=clips, pipeline=load_pipeline(None), member_check=True, manifest=fitted)
    print(f"{source} seed {seed} {how}: % of audible song time called voice {check.share('ALL'):.2f}")
    print(check.members.format_table())


if __name__ == "__main__":
    main(sys.argv[1:])
