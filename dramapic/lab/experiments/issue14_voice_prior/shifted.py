"""Stage 1 with a log-prior shift per label, for the lab only (the product has no such setting: it was measured
and not kept, RESULTS.md). Importing this module and calling :func:`install` makes every caller of
``stage1_frame_labels`` (the analysis, the song check, the variants) apply the song guard, then multiply the
probabilities by exp(shift) and renormalise, then smooth as the pipeline says.

As a command, the rest of the line is a `dramapic` command run with the shift installed:

    python shifted.py '{"voice": 0.25}' eval --cross-corpus --data ../shared/data --work WORK ...
"""
import dataclasses
import json
import sys

import numpy as np

from dramapic.analysis import analyze, stage1

_PLAIN = stage1.stage1_frame_labels  # the product's, whatever install() has patched since


def install(shift):
    """Patch ``stage1_frame_labels`` where it is looked up; ``shift`` maps label -> log-prior (missing: 0)."""
    unknown = set(shift) - set(stage1.STAGE1_LABELS)
    if unknown:
        raise SystemExit(f"unknown label(s) {sorted(unknown)}")
    factor = np.exp([float(shift.get(lab, 0.0)) for lab in stage1.STAGE1_LABELS])

    def shifted(probabilities, scores, *, settings):
        if settings.song_guard:
            probabilities = stage1.song_guard(probabilities, scores, speech_below=settings.song_guard_speech_below,
                                              singing_from=settings.song_guard_singing_from,
                                              context_s=settings.song_guard_context_s)
        probabilities = probabilities * factor[None, :].astype(probabilities.dtype)
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        return _PLAIN(probabilities, scores, settings=dataclasses.replace(settings, song_guard=False))

    stage1.stage1_frame_labels = shifted
    analyze.stage1_frame_labels = shifted
    return shifted


if __name__ == "__main__":
    install(json.loads(sys.argv[1]))
    from dramapic.cli import main

    sys.exit(main(sys.argv[2:]))
