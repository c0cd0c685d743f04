"""Cache window embeddings and pitch features of every voice clip (issue 14, phase 1a).

For every ``voice`` clip of ``manifest.csv`` and ``manifest_extra.csv`` with a gender or a speaker id (both
splits): resemblyzer embeddings of 1.5 s windows every 0.75 s through the product's own encoder path
(``SpeakerEncoder._embed``, the one ``label_voice_segments`` and ``embed_clips`` use), for the clean clip and one
augmented copy (``dramapic.train.augment_clip``: crop / music-or-noise bed at 0-20 dB SNR / telephone band / gain,
plus with p = 0.25 a synthetic room, ``apply_room``), with beds from the clip's own split. Pitch features per
window (:func:`pitch.window_pitch_features`) on the same samples.

Usage: ``python cache_clips.py --shard 0 --shards 2`` (then ``--merge``).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data")
OUT = Path(__file__).resolve().parent / "cache"
SEED = 14
P_ROOM = 0.25
N_BEDS = 300  # beds per split decoded into memory
CHECKPOINT_BATCHES = 5  # a part file every 5 batches of 16 clips
WINDOW_S, HOP_S = 1.5, 0.75
BED_SUBTYPES_EXCLUDED = {"vocal_pop", "a_cappella", "sung_vocals"}  # a singer under speech is not a "bed" here


def clip_table() -> list[dict[str, str]]:
    rows = []
    for name in ("manifest.csv", "manifest_extra.csv"):
        with open(DATA / name, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["label"] == "voice" and (r["gender"] or r["speaker"]):
                    rows.append({**r, "manifest": name})
    rows.sort(key=lambda r: r["path"])
    return rows


def bed_paths(split: str) -> list[Path]:
    out = []
    for name in ("manifest.csv", "manifest_extra_music.csv"):
        with open(DATA / name, newline="", encoding="utf-8") as fh:
            out += [DATA / r["path"] for r in csv.DictReader(fh)
                    if r["split"] == split and r["label"] in ("song", "noise")
                    and r["subtype"] not in BED_SUBTYPES_EXCLUDED]
    return sorted(out)


def speaker_round_robin(rows: list[dict[str, str]]) -> list[int]:
    """Clip indices: round k holds the k-th clip (seeded order) of every speaker, speakers in seeded order."""
    rng = np.random.default_rng([SEED, 99])
    by_spk: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_spk.setdefault(r["speaker"] or f"_nospk_{i}", []).append(i)
    speakers = sorted(by_spk)
    speakers = [speakers[k] for k in rng.permutation(len(speakers))]
    lists = {s: [by_spk[s][k] for k in rng.permutation(len(by_spk[s]))] for s in speakers}
    out, k = [], 0
    while len(out) < len(rows):
        for s in speakers:
            if k < len(lists[s]):
                out.append(lists[s][k])
        k += 1
    return out


def run_shard(shard: int, shards: int, batch: int = 16) -> Path:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from dramapic.speakers import SAMPLE_RATE, SpeakerEncoder
    from dramapic.train import _load, apply_room, augment_clip, room_impulse

    from pitch import window_pitch_features

    import dramapic.train as product_train
    from make_timelines import read_audio

    rows = clip_table()
    # round-robin over speakers (seeded): first one clip of every speaker, then a second one, ... so that every
    # checkpoint covers as many speakers as possible (the shared CPUs may not allow the whole set in time)
    order = speaker_round_robin(rows)
    mine = [int(i) for k, i in enumerate(order) if k % shards == shard]
    # a seeded subset of the beds, decoded once (seeking in Opus files per clip is what made this slow; some
    # extra-music files need ffmpeg); the product's _load_piece is pointed at this in-memory cache
    beds, decoded = {}, {}
    for split in ("train", "dev"):
        paths = bed_paths(split)
        pick = np.random.default_rng([SEED, 7]).choice(len(paths), size=min(N_BEDS, len(paths)), replace=False)
        beds[split] = [paths[k] for k in sorted(pick)]
        for path in beds[split]:
            decoded[path] = read_audio(path)
    product_train._load_piece = lambda path, n, rng: product_train._bed_piece(decoded[path], n, rng)
    enc = SpeakerEncoder()
    parts = {k: [] for k in ("emb", "pitch", "clip", "cond", "t0", "t1")}
    desc = {}
    t_start = time.time()
    for b0 in range(0, len(mine), batch):
        ids = mine[b0:b0 + batch]
        for cond in ("clean", "aug"):
            audios = []
            for i in ids:
                x = _load(DATA / rows[i]["path"])
                if cond == "aug":
                    rng = np.random.default_rng([SEED, i])
                    x, what = augment_clip(x, beds[rows[i]["split"]], rng)
                    if rng.random() < P_ROOM:
                        x = apply_room(x, room_impulse(rng))
                        what += "+room"
                    desc[i] = what
                audios.append(x)
            bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])])
            regions = [(bounds[k] / SAMPLE_RATE, bounds[k + 1] / SAMPLE_RATE) for k in range(len(audios))]
            whole = np.concatenate(audios)
            times, emb, region = enc._embed(whole, SAMPLE_RATE, regions, WINDOW_S, HOP_S)
            parts["emb"].append(emb)
            parts["pitch"].append(window_pitch_features(whole, times=times, sample_rate=SAMPLE_RATE))
            parts["clip"].append(np.asarray(ids)[region])
            parts["cond"].append(np.full(len(region), 0 if cond == "clean" else 1, np.int8))
            off = bounds[region] / SAMPLE_RATE
            parts["t0"].append(times[:, 0] - off)
            parts["t1"].append(times[:, 1] - off)
        done = min(b0 + batch, len(mine))
        if (b0 // batch) % CHECKPOINT_BATCHES == CHECKPOINT_BATCHES - 1 or done == len(mine):
            part = OUT / f"clips_shard{shard}_part{b0 // batch // CHECKPOINT_BATCHES:03d}.npz"
            np.savez(part, **{k: np.concatenate(v) for k, v in parts.items()},
                     aug_desc=np.array([desc.get(i, "") for i in range(len(rows))]))
            parts = {k: [] for k in parts}
        if (b0 // batch) % 10 == 0:
            el = time.time() - t_start
            print(f"shard {shard}: {done}/{len(mine)} clips, {el:.0f} s, eta {el / done * (len(mine) - done):.0f} s",
                  flush=True)
    return OUT


def merge(shards: int) -> Path:
    rows = clip_table()
    data = [np.load(p) for p in sorted(OUT.glob("clips_shard*_part*.npz"))]
    cat = {k: np.concatenate([d[k] for d in data]) for k in ("emb", "pitch", "clip", "cond", "t0", "t1")}
    order = np.lexsort((cat["t0"], cat["cond"], cat["clip"]))
    cat = {k: v[order] for k, v in cat.items()}
    aug = data[0]["aug_desc"].copy()
    for d in data[1:]:
        aug = np.where(d["aug_desc"] != "", d["aug_desc"], aug)
    col = lambda key: np.asarray([r[key] for r in rows])  # noqa: E731
    flags = {}
    with open(DATA / "extra" / "gender_f0_flags.tsv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            flags[r["speaker"]] = "strong" if r["strong"] == "yes" else "flag"
    c = cat["clip"]
    out = OUT / "clip_windows.npz"
    np.savez(
        out,
        emb=cat["emb"].astype(np.float32), pitch=cat["pitch"].astype(np.float32),
        clip=c.astype(np.int32), condition=np.where(cat["cond"] == 0, "clean", "aug"),
        t0=cat["t0"].astype(np.float32), t1=cat["t1"].astype(np.float32),
        speaker=col("speaker")[c], source=col("source")[c], gender=col("gender")[c], split=col("split")[c],
        language=col("language")[c], subtype=col("subtype")[c],
        # the clip table (index = ``clip``)
        clip_path=col("path"), clip_speaker=col("speaker"), clip_source=col("source"), clip_gender=col("gender"),
        clip_split=col("split"), clip_language=col("language"), clip_subtype=col("subtype"),
        clip_duration=col("duration_s").astype(np.float32), clip_aug=aug,
        clip_f0_flag=np.asarray([flags.get(s, "") for s in col("speaker")]),
    )
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--merge", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(merge(a.shards) if a.merge else run_shard(a.shard, a.shards))
