"""YAMNet's own acoustic-scene classes as a room detector: do they tell the judge's far rooms from its near ones,
and what do they say of the song check's music? (issue 13/14, 2026-12-07; measured, nothing shipped)

    python room_scores.py timelines WORK/timelines WORK/far-rooms/timelines-* near_far.json
    python room_scores.py songs ../shared/data songs.json
    python room_scores.py table near_far.json songs.json

Per YAMNet patch (0.96 s every 0.48 s) it keeps the logits of "Inside, small room", "Inside, large room or hall",
"Inside, public space", "Reverberation", "Echo" and "Speech" (class indices below); ``table`` scores a file by the
median over its patches of small room + large room (logits) and prints how well that separates the near timelines
from their far-room copies (``dramapic eval --cross-corpus --rooms far`` writes those under ``--work``) and where the
song check's clips fall. Imports the current package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

#: YAMNet class indices: small room, large room or hall, public space, reverberation, echo, speech
CLASSES = [500, 501, 502, 505, 506, 0]


def _logits(path: Path) -> list:
    from dramapic.analysis.yamnet import load_yamnet
    from dramapic.media import decode_audio, probe

    _, logits = load_yamnet().window_logits(decode_audio(probe(path)))
    return logits[:, CLASSES].tolist()


def timelines(near: str, far: str, out: str) -> None:
    scores = {}
    for tag, root in (("near", near), ("far", far)):
        for path in sorted(Path(root).glob("*/*.opus")):
            scores[f"{tag}/{path.stem}"] = _logits(path)
    Path(out).write_text(json.dumps(scores), encoding="utf-8")


def songs(data: str, out: str) -> None:
    from dramapic.lab.songcheck import songcheck_clips

    scores = {f"{c.source}/{Path(c.path).stem}/{c.subtype}": _logits(Path(c.path))
              for c in songcheck_clips(data_root=Path(data))}
    Path(out).write_text(json.dumps(scores), encoding="utf-8")


def _room(logits) -> float:
    x = np.asarray(logits)
    return float(np.median(x[:, 0] + x[:, 1]))


def table(near_far: str, song_file: str) -> None:
    from sklearn.metrics import roc_auc_score

    timelines = json.loads(Path(near_far).read_text(encoding="utf-8"))
    near = [_room(v) for k, v in timelines.items() if k.startswith("near/")]
    far = [_room(v) for k, v in timelines.items() if k.startswith("far/")]
    print(f"files: near {len(near)}, far {len(far)}; file AUC {roc_auc_score([0] * len(near) + [1] * len(far), near + far):.4f}")
    print(f"near: median {np.median(near):.2f}, max {max(near):.2f}; far: median {np.median(far):.2f}, min {min(far):.2f}")
    # patch level, smoothed over 7 patches (about 3.4 s), each class alone
    for j, name in enumerate(("small room", "large room", "public space", "reverberation", "echo")):
        a, b = ([np.convolve(np.asarray(v)[:, j], np.ones(7) / 7, "same") for k, v in timelines.items()
                 if k.startswith(tag)] for tag in ("near/", "far/"))
        a, b = np.concatenate(a), np.concatenate(b)
        print(f"patch AUC, {name}: {roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b]):.3f}")
    clips = {k: _room(v) for k, v in json.loads(Path(song_file).read_text(encoding="utf-8")).items()}
    values = np.array(list(clips.values()))
    print(f"song check: {len(values)} clips, median {np.median(values):.2f}; "
          f"{int((values >= min(far)).sum())} at or above the roomiest-looking far timeline's floor ({min(far):.2f}):")
    for key, value in sorted(clips.items(), key=lambda kv: -kv[1]):
        if value >= min(far):
            print(f"  {value:6.2f}  {key}")


if __name__ == "__main__":
    {"timelines": timelines, "songs": songs, "table": table}[sys.argv[1]](*sys.argv[2:])
