"""The default Pic-ensemble (same four members, same stacker, same recipe) retrained with the ``train`` part of
``manifest_extra_music.csv`` among its music (issue 13, item 2: "Train on its train part").

The shipped default stage 1 was fitted on ``manifest.csv`` alone; only the opt-in song-safe stage 1 heard the extra
music. Here ``dramapic.lab.train_stage1.train_stage1`` runs unchanged on ``manifest.csv`` with the extra music's
train rows added to the material its mixes and clip reels draw from, minus the song check's held-out sources (CSD a
cappella, openair operatic: ``dramapic.lab.songcheck.HELDOUT_SOURCES``). A track's parts stay in one fold (its
``speaker`` column is the track id). Voices stay ``manifest.csv``'s, so Common Voice, nEMO and RAVDESS remain voices
stage 1 never heard and the cross-corpus member check keeps its meaning.

    python train_extra.py ../shared/data/manifest.csv MODELS_DIR     # a copy of models/; its stage-1 files replaced

A record of the judged run, written against commit ``d2609f0`` (the last one before the product trained stage 1 on
the extra music): it patches ``mixes.read_manifest``, ``mixes._source_group`` and ``mixes._load``, which that
commit's ``dramapic/lab/mixes.py`` had. To run it, check that commit out beside this repository
(``git worktree add --detach ../dramapic-d2609f0 d2609f0``) and from this folder
``PYTHONPATH=<that checkout> python train_extra.py ...``. It is not ported to today's package because
there is nothing left to patch: the product has done the same since (``dramapic.lab.stage1_material.stage1_rows``,
byte-identical files from ``dramapic train --only stage1``), so against today's package this script refuses to run
(it would add the extra music twice).
"""
from __future__ import annotations

import sys
from pathlib import Path

from dramapic.lab import mixes
from dramapic.lab.data import load_audio
from dramapic.lab.songcheck import HELDOUT_SOURCES
from dramapic.lab.train_stage1 import train_stage1

EXTRA_MUSIC = "manifest_extra_music.csv"


def install(manifest_csv: Path) -> int:
    if hasattr(mixes, "stage1_rows"):
        raise SystemExit("the package already trains stage 1 on the extra music: dramapic train --only stage1 "
                         "(this record runs against commit d2609f0)")
    real_read, real_group = mixes.read_manifest, mixes._source_group
    extra = [r for r in real_read(manifest_csv.with_name(EXTRA_MUSIC))
             if r["split"] == "train" and r["source"] not in HELDOUT_SOURCES]
    extra_paths = {r["path"] for r in extra}

    def read_manifest(path):
        rows = real_read(path)
        return rows + extra if Path(path) == manifest_csv else rows

    def source_group(row, origin):
        if row["path"] in extra_paths:
            return "track:" + (row.get("speaker") or row["path"])
        return real_group(row, origin)

    mixes.read_manifest, mixes._source_group = read_manifest, source_group
    mixes._load = load_audio  # some extra-music Opus files need ffmpeg (libsndfile calls them malformed)
    return len(extra)


def main(argv: list[str]) -> None:
    manifest_csv, out_dir = Path(argv[0]).resolve(), Path(argv[1])
    n = install(manifest_csv)
    print(f"extra music train rows added: {n}", flush=True)
    entries = train_stage1(manifest_csv, out_dir=out_dir, seed=0)
    for e in entries:
        print(e["name"], e.get("metrics", {}).get("out_of_fold_train_mixes"), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
