"""What the ensemble calls the held-out music: per source, the share of audible song time labelled voice / song /
noise / silence (the pipeline's stage 1, song guard included) by each stage-1 refit named, so that a shortfall can
be read as the song/noise or the song/voice boundary.

Usage: python heldout_labels.py DATA SOURCE=REFIT_FOLDER [SOURCE=REFIT_FOLDER ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dramapic import media
from dramapic.analysis import detectors, loaders
from dramapic.analysis.stage1 import stage1_frame_labels
from dramapic.config import load_pipeline
from dramapic.lab.songcheck import FLOOR_DB, songcheck_clips
from dramapic.models import load_manifest
from dramapic.result import STAGE1_LABELS


def shares(clips, manifest) -> dict[str, float]:
    cfg = load_pipeline(None).stage1
    model = loaders.stage1_model(cfg, manifest=manifest)
    counts = np.zeros(len(STAGE1_LABELS))
    for clip in clips:
        audio = media.decode_audio(media.probe(clip.path))
        scores = detectors.run_detectors(audio)
        _, path = stage1_frame_labels(model.frame_probabilities(audio, scores), scores, settings=cfg)
        counts += np.bincount(path[scores.energy_db >= FLOOR_DB], minlength=len(STAGE1_LABELS))
    return {lab: round(float(c / max(counts.sum(), 1)), 4) for lab, c in zip(STAGE1_LABELS, counts)}


def main(argv: list[str]) -> None:
    data = Path(argv[0])
    clips = songcheck_clips(data_root=data)
    for arg in argv[1:]:
        source, folder = arg.split("=", 1)
        mine = [c for c in clips if c.source == source]
        print(source, folder, len(mine), "clips", shares(mine, load_manifest(Path(folder))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
