"""The voice prior with the speaker count kept on confident voice (lab only): stage 1 runs twice on the same
probabilities, unshifted and shifted (shifted.py). The shifted segments are the output and stage 2 embeds and
re-segments every window inside them, but the clustering -- which decides how many speakers there are and where
their centroids lie -- sees only the windows whose centre lies inside an unshifted voice segment. The windows the
shift adds (pauses bridged between two speakers' turns, speech over music the unshifted stage 1 called song) are
only assigned to those centroids by the re-segmentation.

    python core_cluster.py '{"voice": 0.5}' eval --cross-corpus --data ../shared/data --work WORK ...
"""
import json
import sys

import numpy as np

from dramapic.analysis import analyze, diarization
from dramapic.analysis.clustering import cluster_windows, stopping_distance
from dramapic.analysis.embeddings import l2

import shifted

CORE: list[tuple[float, float]] = []          # the unshifted voice segments of the file being analysed
_PLAIN_SEGMENTS = analyze._stage1_segments
_PLAIN_DIARIZE = diarization._diarize


def install(shift):
    shifted_labels = shifted.install(shift)

    def stage1_segments(scores, probabilities, pipeline, *, duration):
        analyze.stage1_frame_labels = shifted._PLAIN
        core, _ = _PLAIN_SEGMENTS(scores, probabilities, pipeline, duration=duration)
        CORE[:] = [(s.start, s.end) for s in core if s.label == "voice"]
        analyze.stage1_frame_labels = shifted_labels
        return _PLAIN_SEGMENTS(scores, probabilities, pipeline, duration=duration)

    def diarize(segments, times, embeddings, region, male_logits, options, gender_model, centroids=None,
                projection=None):
        if centroids is None and CORE:
            seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
            t, emb, reg, z = diarization._valid(times, embeddings, region, male_logits)
            centre = t.mean(axis=1)
            core = np.asarray(CORE)
            inside = ((centre[:, None] >= core[None, :, 0]) & (centre[:, None] < core[None, :, 1])).any(axis=1)
            if inside.sum() >= 2:
                e = projection.transform(emb) if projection is not None else emb
                per_seg = np.bincount(reg, minlength=seg.shape[0])
                weights = np.clip(seg[:, 1] - seg[:, 0], 0, None)[reg] / per_seg[reg]
                a, b = gender_model.window_calibration
                p_female = 1.0 / (1.0 + np.exp(a * z + b))
                ids = cluster_windows(embeddings=e[inside], weights=weights[inside], p_female=p_female[inside],
                                      options=options, threshold=stopping_distance(options, projection))
                centroids = l2(np.stack([e[inside][ids == c].mean(axis=0) for c in range(int(ids.max()) + 1)]))
        return _PLAIN_DIARIZE(segments, times, embeddings, region, male_logits, options, gender_model,
                              centroids=centroids, projection=projection)

    analyze._stage1_segments = stage1_segments
    diarization._diarize = diarize


if __name__ == "__main__":
    install(json.loads(sys.argv[1]))
    from dramapic.cli import main

    sys.exit(main(sys.argv[2:]))
