"""Loader and scorers for the song-guard experiment (issue 13): exp13's cached inputs (`../issue13_songs/cache13.py`,
under /work/exp13/cache) read with the CURRENT package's functions; the shipped default ensemble re-combined from
the cached member probabilities. Scoring as in exp13 (`lab13.py`): dev mixes by `lab.evaluate.score_result`, song
check over audible frames (>= -50 dB), timelines over non-silent frames outside a 0.25 s collar."""
import json, numpy as np
from pathlib import Path
from scipy.ndimage import uniform_filter1d
from dramapic.analysis.detectors import DetectorScores
from dramapic.analysis import stage1 as S
from dramapic.analysis.features import windows_to_frames
from dramapic.analysis.smoothing import smooth_labels
from dramapic.models import load_manifest
CACHE = Path("/work/exp13/cache")
SHIPPED = ["stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr"]
FAM = S.family_index()
FI = {n: i for i, n in enumerate(S.FAMILY_NAMES)}
MIN_FRAMES = np.array([30, 50, 50, 30])
class Item:
    def __init__(s, path):
        with np.load(path, allow_pickle=False) as z:
            m = z["scores"]; s.scores = DetectorScores(*[m[:, i] for i in range(6)])
            s.shipped = {k[2:]: z[k] for k in z.files if k.startswith("p:")}
            s.labels = z["labels"].astype(np.int64) if "labels" in z.files else None
            s.meta = json.loads(str(z["meta"])); s.name = path.stem
        side = CACHE / "train_shipped" / path.name
        if path.parent.name == "train" and side.exists():
            with np.load(side) as zs:
                s.shipped = {k: zs[k] for k in zs.files}
        with np.load(path, allow_pickle=False) as z:
            fp = S.family_posteriors(logits=z["yam_logits"], fam=FAM)
            s.fam = windows_to_frames(values=fp, centres=z["yam_centres"], n_frames=s.scores.n_frames)
        if s.labels is not None and len(s.labels) != s.scores.n_frames:
            lab = np.full(s.scores.n_frames, 3); n = min(len(s.labels), len(lab)); lab[:n] = s.labels[:n]; s.labels = lab
def load(kind): return [Item(p) for p in sorted((CACHE / kind).glob("*.npz")) if not p.name.endswith(".tmp.npz")]
ENS = S.Stage1Ensemble.from_manifest(load_manifest(), members=SHIPPED, stacker="stage1-stacker-lr")
def shipped(it): return ENS.combine([it.shipped[m] for m in SHIPPED])
def smooth(p): return smooth_labels(p, switch_penalty=20.0, min_frames=MIN_FRAMES)
def collar_keep(labels, c=25):
    keep = np.ones(len(labels), bool)
    for e in np.flatnonzero(np.diff(labels)) + 1: keep[max(0, e - c):e + c] = False
    return keep
def timeline_acc(items, predict):
    cm = np.zeros((4, 4), np.int64)
    for it in items:
        k = collar_keep(it.labels); np.add.at(cm, (it.labels[k], smooth(predict(it))[k]), 1)
    return float(np.trace(cm[:3, :3]) / max(cm[:3].sum(), 1)), cm
def song_share(items, predict):
    by = {}
    for it in items:
        path = smooth(predict(it)); aud = it.scores.energy_db >= -50
        b = by.setdefault(it.meta["subtype"], [0, 0]); b[0] += ((path == 0) & aud).sum(); b[1] += aud.sum()
    out = {k: round(100 * a / max(b, 1), 2) for k, (a, b) in sorted(by.items())}
    out["ALL"] = round(100 * sum(v[0] for v in by.values()) / sum(v[1] for v in by.values()), 2)
    return out
def devmix(items, predict):
    from dramapic.lab import evaluate as E, reference as R, variants as V
    from dramapic.result import SCHEMA
    files = []
    for it in items:
        ref = R.load_reference(Path("/work/shared/data/dev_mixes") / f"{it.name}.labels.csv")
        path = smooth(predict(it)); dur = ref.duration
        res = {"schema": SCHEMA, "source": {"duration": dur}, "segments": V._segments_from_frames(path, None, dur)}
        files.append(E.score_result(res, ref))
    rep = E.aggregate(files)
    return round(rep.accuracy, 4), round(rep.class_metrics["voice"]["f1"], 4)
