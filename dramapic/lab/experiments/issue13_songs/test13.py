"""Checks of the exported stage 1 (/work/exp13/models) through the product's own code paths:
stitched-equals-whole (ChunkedStage1, 12 s chunks, 4 s context, the streaming test's tolerances) and analysis
speed (members + stacker on top of the detectors, and the whole stage-1 pass) against the shipped ensemble, on the
bundled sample and on a 2-minute dev mix.

usage: python test13.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, "/work/exp13")
import stage1x as X  # noqa: E402
from dramapic import analysis, detectors, ensemble, media  # noqa: E402
from dramapic.config import load_pipeline  # noqa: E402
from dramapic.models import load_manifest  # noqa: E402
from dramapic.smoothing import smooth_labels  # noqa: E402


def _yamnet_member_shared(self, audio, scores):
    # the integration change: yamnet-lr reads the same per-chunk YAMNet logits as yamnet-families
    from dramapic.features import windows_to_frames

    centres, logits = X.yamnet_window_logits(audio)
    return windows_to_frames(values=self.predict_features(logits), centres=centres, n_frames=scores.n_frames)


ensemble.YamNetMember.frame_probabilities = _yamnet_member_shared


def new_model():
    manifest = load_manifest(Path("/work/exp13/models"))
    stacker = manifest.get("stage1-stacker-lr")
    return X.Stage1EnsembleX.from_manifest(manifest, members=stacker.info["members"], stacker="stage1-stacker-lr")


def old_model():
    return ensemble.Stage1Ensemble.from_manifest(load_manifest(), members=load_pipeline(None).stage1.members,
                                                 stacker="stage1-stacker-lr")


def stitched(model, audio):
    whole_scores = detectors.run_detectors(audio)
    whole = model.frame_probabilities(audio, whole_scores)
    first = analysis.ChunkedStage1(model, chunk_s=12.0, context_s=analysis.CONTEXT_S)
    for start in range(0, audio.shape[0], 7777):
        first.feed(audio[start:start + 7777])
    scores, probs = first.finish()
    cfg = load_pipeline(None).stage1
    mf = np.array([round(cfg.min_duration_s[lab] / 0.01) for lab in ("voice", "song", "noise", "silence")])
    agree = (smooth_labels(probs, switch_penalty=20, min_frames=mf)
             == smooth_labels(whole, switch_penalty=20, min_frames=mf)).mean()
    return float(np.abs(probs - whole).max()), float(agree)


def speed(model, audio, repeats=2):
    dur = audio.shape[0] / 16000
    best_det, best_mem = 1e9, 1e9
    for _ in range(repeats):
        X._LAST.clear()
        t = time.perf_counter()
        scores = detectors.run_detectors(audio)
        t1 = time.perf_counter()
        model.frame_probabilities(audio, scores)
        t2 = time.perf_counter()
        best_det, best_mem = min(best_det, t1 - t), min(best_mem, t2 - t1)
    return best_det / dur, best_mem / dur


def main():
    sample = media.decode_audio(media.probe(Path("/work/base/samples/drama_sample.mp4")))
    devmix = media.decode_audio(media.probe(Path("/work/shared/data/dev_mixes/devmix_01.opus")))
    new, old = new_model(), old_model()
    d, agree = stitched(new, sample)
    print(f"stitched-equals-whole (new, bundled sample, 12 s chunks): max |p_chunked - p_whole| = {d:.2e} "
          f"(test bound 1e-4): {'PASS' if d < 1e-4 else 'FAIL'}; smoothed labels agree {agree:.4f} (bound 0.99)")
    for label, audio in (("bundled sample", sample), ("devmix_01 (134 s)", devmix)):
        for name, model in (("shipped", old), ("new", new)):
            det, mem = speed(model, audio)
            print(f"RTF {label:18s} {name:8s} detectors {det:.4f}  members+stacker {mem:.4f}  stage-1 total "
                  f"{det + mem:.4f}")


if __name__ == "__main__":
    main()
