"""Cache the expensive per-item inputs of stage 1: detector scores, YAMNet logits, and (eval items) the shipped
members' frame probabilities. One npz per item under /work/exp13/cache/<set>/.

usage: python cache13.py eval|train
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(0, "/work/exp13")
import data13  # noqa: E402
from dramapic import detectors, media  # noqa: E402
from dramapic.ensemble import Stage1Ensemble  # noqa: E402
from dramapic.features import windows_to_frames  # noqa: E402
from dramapic.models import load_manifest  # noqa: E402
from dramapic.yamnet import load_yamnet  # noqa: E402

CACHE = Path("/work/exp13/cache")
SHIPPED = ["stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def features(audio: np.ndarray, ens: Stage1Ensemble | None) -> dict[str, np.ndarray]:
    t0 = time.perf_counter()
    scores = detectors.run_detectors(audio)
    t1 = time.perf_counter()
    centres, logits = load_yamnet().window_logits(audio)
    t2 = time.perf_counter()
    out = {"scores": scores.as_matrix().astype(np.float32), "yam_centres": centres, "yam_logits": logits,
           "t_detectors": t1 - t0, "t_yamnet": t2 - t1, "duration": len(audio) / 16000}
    if ens is not None:
        for m in ens.members:
            c = time.perf_counter()
            if m.kind == "yamnet-lr":
                p = windows_to_frames(values=m.predict_features(logits), centres=centres, n_frames=scores.n_frames)
            else:
                p = m.frame_probabilities(audio, scores)
            out[f"p:{m.name}"] = p.astype(np.float32)
            out[f"t:{m.name}"] = time.perf_counter() - c
    return out


def save(path: Path, arrays: dict, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=json.dumps(meta), **arrays)
    tmp.replace(path)


def main(which: str) -> None:
    if which == "eval":
        ens = Stage1Ensemble.from_manifest(load_manifest(), members=SHIPPED, stacker="stage1-stacker-lr")
        # dev mixes
        for lab in sorted(Path("/work/shared/data/dev_mixes").glob("devmix_*.labels.csv")):
            name = lab.name.removesuffix(".labels.csv")
            out = CACHE / "devmix" / f"{name}.npz"
            if out.exists():
                continue
            audio = media.decode_audio(media.probe(lab.with_name(f"{name}.opus")))
            save(out, features(audio, ens), {"name": name})
            log("devmix", name)
        # song check clips
        for clip in data13.songcheck_clips():
            out = CACHE / "song" / f"{clip.name}.npz"
            if out.exists():
                continue
            audio = data13.T._load(clip.path)
            save(out, features(audio, ens), {"name": clip.name, "subtype": clip.subtype, "source": clip.source,
                                             "track": clip.track})
        log("song clips done")
        # cross-corpus timelines
        for mix in data13.crosscorpus_timelines(log=log):
            out = CACHE / "xc" / f"{mix.name}.npz"
            if out.exists():
                continue
            arrays = features(mix.audio, ens)
            arrays["labels"] = mix.labels
            save(out, arrays, {"name": mix.name, "heldout": mix.recipe["heldout"]})
            log("xc", mix.name)
    else:
        def sink(mix):
            out = CACHE / "train" / f"{mix.name}.npz"
            if out.exists():
                return
            arrays = features(mix.audio, None)
            arrays["labels"] = mix.labels
            arrays["audio16"] = (np.clip(mix.audio, -1, 1) * 32767).astype(np.int16)
            save(out, arrays, {"name": mix.name, "fold": mix.fold, "voice_group": mix.recipe["voice_group"],
                               "music_group": mix.recipe["music_group"],
                               "augmentation": mix.recipe.get("augmentation", {})})
            log("train", mix.name, round(len(mix.audio) / 16000, 1), mix.recipe["voice_group"], mix.recipe["music_group"])

        data13.build_training_mixes(log=log, sink=sink, only_folds=[int(f) for f in sys.argv[2:]] or None)
        log("train done")


if __name__ == "__main__":
    main(sys.argv[1])
