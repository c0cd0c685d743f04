"""Shipped stage-1 members' frame probabilities on the cached training mixes (sidecar files), to test whether
the narrow members still add anything to the new stacker. Partly in-sample: they were fitted on manifest.csv train
clips, which these mixes reuse (the extra voices and music are new to them)."""
import sys, time
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, "/work/exp13")
from dramapic.detectors import DetectorScores
from dramapic.ensemble import Stage1Ensemble
from dramapic.features import windows_to_frames
from dramapic.models import load_manifest
SHIPPED = ["stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr"]
ens = Stage1Ensemble.from_manifest(load_manifest(), members=SHIPPED, stacker="stage1-stacker-lr")
out_dir = Path("/work/exp13/cache/train_shipped"); out_dir.mkdir(exist_ok=True)
for path in sorted(Path("/work/exp13/cache/train").glob("mix13_*.npz")):
    if path.name.endswith(".tmp.npz") or (out_dir / path.name).exists():
        continue
    with np.load(path) as z:
        audio = z["audio16"].astype(np.float32) / 32767
        m = z["scores"]; scores = DetectorScores(*[m[:, i] for i in range(6)])
        centres, logits = z["yam_centres"], z["yam_logits"]
    arr = {}
    for mem in ens.members:
        if mem.kind == "yamnet-lr":
            p = windows_to_frames(values=mem.predict_features(logits), centres=centres, n_frames=scores.n_frames)
        else:
            p = mem.frame_probabilities(audio, scores)
        arr[mem.name] = p.astype(np.float32)
    np.savez(out_dir / path.name, **arr)
    print(time.strftime("%H:%M:%S"), path.name, flush=True)
