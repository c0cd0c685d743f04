#!/usr/bin/env python3
"""Cross-corpus timelines for dramapic (issue 14): the dev-mix recipe of ``make_dev_mixes.py``, per voice source.

Adapted from ``../shared/data/make_dev_mixes.py`` (same mixer, labelling rule and outputs). Changes:

* speakers come from the ``dev`` split of ``manifest.csv`` *and* ``manifest_extra.csv``, and every timeline
  draws its cast from one named source (``librispeech-train-clean-100``, ``emodb``, ``cv``, ``ravdess``,
  ``nemo``) or, for the ``mixed`` timelines, one source per cast member;
* acted / short-clip corpora (Emo-DB, RAVDESS, nEMO, Common Voice) are cut into turns as Emo-DB was (trimmed
  clips, one or two per turn); a Common Voice speaker speaks each of their (1-2) clips as one turn;
* music beds and stretches also draw on the dev instrumental tracks of ``manifest_extra_music.csv`` (grouped
  into tracks by its ``speaker`` column); sung ``vocal_pop`` is left out (the stage-1 song issue owns it).

Original docstring follows.

Build the dramapic dev mixes: drama-like timelines made only of dev-split clips.

Every mix is a sequence of *blocks* laid on a 10 ms grid:

* dialogue blocks - turns of 1-4 speakers (real utterances from the dev split),
  gaps of 0.15-1.2 s between turns and, now and then, an overlap of 0.2-0.9 s
  when the speaker changes; a block may have a bed underneath: music or noise
  0-15 dB below the speech level (the block is still labelled voice where
  someone speaks, and song/noise in the gaps);
* song stretches (music excerpts, no speech), noise stretches (urban/foley
  recordings), silences (only the room tone).

A very quiet room tone (a dev "silence" clip looped, <= -60 dBFS) runs under
the whole mix so that silences are real low-level recordings, not zeros.

Ground truth is derived from the component signals, not from the plan:

* ``voice`` wherever an utterance is placed (an utterance is the trimmed span
  of a real recording; its internal pauses are part of it);
* otherwise ``song`` where the music component is at or above the energy
  floor, else ``noise`` where the noise component is, else ``silence``;
  the energy floor is -50 dBFS RMS over a 50 ms window (full scale = 1.0);
* non-voice runs shorter than 0.25 s that sit between two non-voice runs are
  merged into their left neighbour (no 10 ms song/noise flicker).

Outputs per mix (``devmix_NN``): ``.opus`` (16 kHz mono Ogg Opus, 32 kbit/s),
``.labels.csv`` (start,end,label,gender,speaker: a flat partition of the
whole file; overlapping speech is one row with speakers and genders joined by
``+`` in the same order), ``.rttm`` (one line per utterance, overlaps kept)
and ``.json`` (the recipe: every clip used, where it came from, its gain).
``index.csv`` summarises all mixes.

The generator is deterministic: the same manifest, clips and seed give the
same mixes (and, with the same ffmpeg/libopus build, byte-identical files).

Usage::

    python make_dev_mixes.py                     # data dir = this script's folder
    python make_dev_mixes.py --data DIR --out DIR/dev_mixes --seed 20251121

Needs numpy, soundfile (libsndfile >= 1.0.29 reads Opus; otherwise ffmpeg is
used to decode) and an ffmpeg with libopus on PATH (or the imageio-ffmpeg
package).
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
HOP = 160                     # 10 ms label grid
FLOOR_DB = -50.0              # energy floor that separates silence from sound
FLOOR_WIN = 800               # 50 ms window for the floor test
MIN_NONVOICE_RUN = 0.25       # s; shorter song/noise/silence flickers are merged
DEFAULT_SEED = 20251121

# The 20 mixes: (speaker genders, corpus).  corpus "libri" = English read
# speech (LibriSpeech dev speakers), "emodb" = German acted emotional speech.
SPECS = [
    ("F", "emodb"), ("M", "emodb"), ("F", "libri"), ("M", "libri"),
    ("FM", "libri"), ("FF", "libri"), ("MM", "libri"), ("FM", "emodb"),
    ("MF", "libri"), ("FF", "libri"), ("MM", "libri"), ("MF", "emodb"),
    ("FFM", "libri"), ("FMM", "libri"), ("FFF", "libri"), ("MMM", "libri"),
    ("FFMM", "libri"), ("FMMM", "libri"), ("FFFM", "libri"), ("MFMF", "libri"),
]
BED_MUSIC = {"orchestral_bgm", "rock_song", "electronic_music", "film_score", "instrumental_electronic",
             "instrumental_piano", "instrumental_lofi"}
STRETCH_MUSIC = BED_MUSIC | {"guitar_stem", "street_music"}


# ---------------------------------------------------------------- audio i/o
def ffmpeg_exe():
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError as exc:
        raise SystemExit("ffmpeg not found (install it or the imageio-ffmpeg package)") from exc


def read_audio(path):
    """Decode a clip to float32 mono at 16 kHz."""
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        if sr == SR:
            return x.mean(1)
    except (RuntimeError, sf.LibsndfileError):
        pass
    raw = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
                          "-ar", str(SR), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).copy()


def write_opus(x, path, bitrate="32k"):
    tmp = Path(str(path) + ".tmp.opus")
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(SR),
                    "-ac", "1", "-i", "-", "-c:a", "libopus", "-b:a", bitrate, "-map_metadata", "-1",
                    "-fflags", "+bitexact", "-flags:a", "+bitexact", str(tmp)],
                   input=np.asarray(x, np.float32).tobytes(), check=True)
    os.replace(tmp, path)


def db(v):
    return 20 * np.log10(max(float(v), 1e-10))


def frame_db(x, win=HOP):
    n = len(x) // HOP
    if n == 0:
        return np.full(0, -200.0)
    fr = x[: n * HOP].reshape(n, HOP)
    fr = fr - fr.mean(1, keepdims=True)
    return 20 * np.log10(np.sqrt((fr ** 2).mean(1)) + 1e-10)


def windowed_db(x, n_frames):
    """RMS in dB over a 50 ms window centred on each 10 ms frame."""
    p = np.concatenate([np.zeros(FLOOR_WIN // 2, np.float32), x, np.zeros(FLOOR_WIN, np.float32)])
    c = np.concatenate([[0.0], np.cumsum(p.astype(np.float64) ** 2)])
    starts = np.arange(n_frames) * HOP + HOP // 2      # window centred on the frame centre
    e = (c[starts + FLOOR_WIN] - c[starts]) / FLOOR_WIN
    return 10 * np.log10(e + 1e-20)


def active_rms_db(x):
    """Level of the loud part of a clip (frames within 30 dB of its peak frame)."""
    f = frame_db(x)
    if len(f) == 0:
        return -200.0
    act = f[f >= f.max() - 30]
    return 10 * np.log10(np.mean(10 ** (act / 10)))


def rms_db(x):
    return db(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if len(x) else -200.0


def fade(x, fin, fout):
    x = x.copy()
    a, b = int(fin * SR), int(fout * SR)
    if a:
        x[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    if b:
        x[-b:] *= np.linspace(1, 0, b, dtype=np.float32)
    return x


def xfade_concat(parts, xf=0.3):
    out = parts[0]
    n = int(xf * SR)
    for p in parts[1:]:
        k = min(n, len(out) // 2, len(p) // 2)
        if k == 0:
            out = np.concatenate([out, p])
            continue
        ramp = np.linspace(0, 1, k, dtype=np.float32)
        mid = out[-k:] * (1 - ramp) + p[:k] * ramp
        out = np.concatenate([out[:-k], mid, p[k:]])
    return out


def q(t):
    """Snap a time in seconds to the 10 ms grid (in samples)."""
    return int(round(t * SR / HOP)) * HOP


# ---------------------------------------------------------------- material
class Material:
    def __init__(self, data_dir, rows):
        self.data = Path(data_dir)
        self.rows = rows
        self._cache = {}

    def audio(self, path):
        if path not in self._cache:
            self._cache[path] = read_audio(self.data / path)
        return self._cache[path]


def speech_units(rng, mat, rows, corpus):
    """Cut a speaker's clips into turn-sized units: [(audio, [clip paths], src_offset)]."""
    units = []
    if corpus in ("emodb", "ravdess", "nemo", "cv"):
        trimmed = []
        for r in rows:
            x = mat.audio(r["path"])
            s, e = speech_span(x)
            if e - s >= int(0.4 * SR):
                trimmed.append((x[s:e], r["path"], s / SR))
        order = rng.permutation(len(trimmed))
        i = 0
        while i < len(order):
            k = 2 if (corpus != "cv" and rng.random() < 0.5 and i + 1 < len(order)) else 1
            parts, srcs = [], []
            for j in order[i:i + k]:
                if parts:
                    parts.append(np.zeros(q(rng.uniform(0.25, 0.5)), np.float32))
                parts.append(trimmed[j][0])
                srcs.append(f"{trimmed[j][1]}@{trimmed[j][2]:.2f}")
            units.append((snap(np.concatenate(parts)), srcs))
            i += k
        return units
    for r in rows:
        x = mat.audio(r["path"])
        phrases = phrase_spans(x)
        i = 0
        while i < len(phrases):
            target = rng.uniform(2.5, 7.0)
            j = i
            while j + 1 < len(phrases) and (phrases[j][1] - phrases[i][0]) / SR < target:
                j += 1
            s = max(0, phrases[i][0] - int(0.05 * SR))
            e = min(len(x), phrases[j][1] + int(0.08 * SR))
            if e - s >= int(0.8 * SR):
                units.append((snap(x[s:e]), [f"{r['path']}@{s / SR:.2f}-{e / SR:.2f}"]))
            i = j + 1
    return units


def snap(x):
    x = x[: len(x) // HOP * HOP]
    return fade(x, 0.01, 0.01)


def _runs(mask, bridge):
    runs = []
    i = 0
    while i < len(mask):
        if mask[i]:
            j = i
            while j < len(mask) and mask[j]:
                j += 1
            if runs and i - runs[-1][1] < bridge:
                runs[-1][1] = j
            else:
                runs.append([i, j])
            i = j
        else:
            i += 1
    return runs


def _speech_mask(x):
    f = frame_db(x)
    thr = max(f.max() - 40, np.percentile(f, 10) + 12, -60)
    return f >= thr


def speech_span(x):
    runs = [r for r in _runs(_speech_mask(x), 30) if r[1] - r[0] >= 8]
    if not runs:
        return 0, 0
    return max(0, runs[0][0] * HOP - int(0.04 * SR)), min(len(x), runs[-1][1] * HOP + int(0.06 * SR))


def trim_quiet_edges(x, rel_db=40.0):
    """Drop leading/trailing frames more than rel_db below the loudest frame."""
    f = frame_db(x)
    on = np.nonzero(f >= f.max() - rel_db)[0] if len(f) else []
    if len(on) == 0:
        return x
    return x[on[0] * HOP:(on[-1] + 1) * HOP]


def phrase_spans(x):
    """Speech runs split at pauses >= 0.3 s (sample indices)."""
    return [(a * HOP, b * HOP) for a, b in _runs(_speech_mask(x), 30) if b - a >= 10]


class Pool:
    """Least-used-first picker over a list of keys (deterministic)."""

    def __init__(self, keys):
        self.keys = sorted(keys)
        self.used = defaultdict(int)

    def pick(self, rng, ok=lambda k: True):
        cand = [k for k in self.keys if ok(k)]
        if not cand:
            return None
        m = min(self.used[k] for k in cand)
        cand = [k for k in cand if self.used[k] == m]
        k = cand[int(rng.integers(len(cand)))]
        self.used[k] += 1
        return k


def tracks_of(rows, subtypes):
    """Group music clips into tracks: pieces named <track>_NN.opus are joined back in order."""
    t = defaultdict(list)
    for r in rows:
        if r["label"] == "song" and r["subtype"] in subtypes:
            stem = r["path"][: -len(Path(r["path"]).suffix)]
            m = re.match(r"^(.*)_(\d\d)$", stem)
            track = r["speaker"] if r["path"].startswith("extra/") and r["speaker"] else (m.group(1) if m else stem)
            t[track + "|" + r["subtype"]].append(r["path"])
    return {k: sorted(v) for k, v in t.items()}


# ---------------------------------------------------------------- the mixer
class Mix:
    def __init__(self):
        self.voice = []            # (start_sample, audio, speaker, gender)
        self.song = []             # (start_sample, audio)
        self.noise = []
        self.recipe = []

    def add(self, kind, start, x, **info):
        getattr(self, kind).append((start, x) + tuple(info.pop("_extra", ())))
        self.recipe.append(dict(role=info.pop("role", kind), start_s=round(start / SR, 3),
                                dur_s=round(len(x) / SR, 3), **info))


def excerpt(rng, mat, pool, tracks, length_s, avoid_quiet=True, level_db=None):
    """Music excerpt of length_s from least-used tracks (joined if a track is too short)."""
    need = q(length_s)
    parts, srcs, got = [], [], 0
    tries = 0
    while got < need and tries < 20:
        tries += 1
        key = pool.pick(rng)
        x = np.concatenate([mat.audio(p) for p in tracks[key]])
        take = min(len(x), need - got + (int(0.3 * SR) if parts else 0))
        best = None
        for _ in range(8):
            off = int(rng.integers(0, max(1, len(x) - take + 1)))
            seg = x[off:off + take]
            if level_db is None or not avoid_quiet:
                best = (off, seg)
                break
            f = frame_db(seg) + (level_db - rms_db(seg))
            loud = np.mean(f >= FLOOR_DB + 6) if len(f) else 0
            if best is None or loud > best[2]:
                best = (off, seg, loud)
            if loud >= 0.95:
                break
        off, seg = best[0], best[1]
        parts.append(seg)
        srcs.append(f"{key.split('|')[0]}@{off / SR:.2f}-{(off + len(seg)) / SR:.2f}")
        got = len(xfade_concat(parts))
    y = xfade_concat(parts)[:need]
    return y, srcs


def noise_excerpt(rng, mat, noise_rows, pool, length_s, same_class=True):
    """Concatenate noise clips (crossfaded) to length_s; returns audio and sources."""
    need = q(length_s)
    parts, srcs = [], []
    cls = None
    while sum(len(p) for p in parts) - 0.3 * SR * max(0, len(parts) - 1) < need and len(parts) < 40:
        k = pool.pick(rng, ok=(lambda p: noise_rows[p]["subtype"] == cls) if (same_class and cls) else (lambda p: True))
        if k is None:
            k = pool.pick(rng)
        cls = cls or noise_rows[k]["subtype"]
        x = trim_quiet_edges(mat.audio(k))
        parts.append(x)
        srcs.append(k)
    y = xfade_concat(parts, 0.3)
    if len(y) < need:
        y = np.concatenate([y, np.zeros(need - len(y), np.float32)])
    return y[:need], srcs, cls


def set_level(x, target_db):
    g = target_db - rms_db(x)
    return (x * 10 ** (g / 20)).astype(np.float32), g


def build_mix(idx, spec, rng, mat, pools, speakers_by_corpus, spk_pool, unit_cache):
    mix = Mix()
    # --- cast -------------------------------------------------------------
    cast = []
    for g, corpus in spec:
        gg = {"F": "female", "M": "male"}[g]
        cand = [s for s in speakers_by_corpus[corpus] if speakers_by_corpus[corpus][s]["gender"] == gg
                and s not in [c["id"] for c in cast]]
        used = spk_pool.used
        # least used first, then the speaker with most speech (solo/duo mixes need it)
        cand.sort(key=lambda s: (used[s], -speakers_by_corpus[corpus][s]["supply"], s))
        s = cand[0]
        used[s] += 1
        cast.append(dict(id=s, gender=gg, language=speakers_by_corpus[corpus][s]["language"],
                         level_db=round(float(rng.uniform(-26, -20)), 2)))
    units = {c["id"]: list(unit_cache[c["id"]]) for c in cast}
    for c in cast:                 # least-used units first (EmoDB speakers recur across mixes)
        units[c["id"]].sort(key=lambda u: (pools["unit_use"][u[1][0]], u[1][0]))
    supply = sum(sum(len(u[0]) for u in units[c["id"]]) for c in cast) / SR
    supply = min(supply, 130.0)
    target = float(np.clip(supply / rng.uniform(0.5, 0.7), 60, 180))
    mean_speech = float(np.mean([c["level_db"] for c in cast]))
    p_bed = rng.dirichlet([2, 2, 1.5])            # none / music / noise, varies per mix
    t = 0
    blocks = []

    def interlude(kind, t):
        if kind == "song":
            L = float(rng.uniform(6, 25))
            lvl = float(rng.uniform(-24, -16))
            x, srcs = excerpt(rng, mat, pools["stretch_pool"], pools["stretch_tracks"], L, level_db=lvl)
            x, g = set_level(fade(x, rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.5)), lvl)
            mix.add("song", t, x, role="song_stretch", clips=srcs, gain_db=round(g, 2), level_dbfs=round(lvl, 2))
        elif kind == "noise":
            L = float(rng.uniform(3, 12))
            lvl = float(rng.uniform(-32, -20))
            x, srcs, cls = noise_excerpt(rng, mat, pools["noise_rows"], pools["noise_pool"], L,
                                         same_class=rng.random() < 0.6)
            x, g = set_level(fade(x, 0.05, 0.2), lvl)
            mix.add("noise", t, x, role="noise_stretch", clips=srcs, gain_db=round(g, 2), level_dbfs=round(lvl, 2))
        else:
            L = float(rng.uniform(1, 4))
        blocks.append(dict(kind=kind, start_s=round(t / SR, 3), dur_s=round(q(L) / SR, 3)))
        return t + q(L)

    # opening
    first = rng.choice(["song", "noise", "silence", "none"], p=[0.4, 0.2, 0.2, 0.2])
    if first != "none":
        t = interlude(first, t)
    last_inter = first
    exhausted = False
    while t / SR < target - 8 and not exhausted:
        # --- dialogue block -------------------------------------------------
        d_blk = float(rng.uniform(12, 40))
        bed = rng.choice(["none", "music", "noise"], p=p_bed)
        block_start = t
        cursor = block_start + q(rng.uniform(0.8, 2.5) if bed != "none" else rng.uniform(0.2, 0.6))
        prev_end, prev_len, cur = None, 0, None
        earlier_end = 0            # end of the turn before the previous one (no 3-way overlap)
        n_turns = 0
        while (cursor - block_start) / SR < d_blk:
            avail = [c for c in cast if units[c["id"]]]
            if not avail:
                exhausted = True
                break
            if len(cast) == 1 or cur is None:
                nxt = avail[int(rng.integers(len(avail)))] if cur is None else avail[0]
            else:
                others = [c for c in avail if c["id"] != cur["id"]]
                if others and (rng.random() < 0.85 or cur not in avail):
                    w = np.array([sum(len(u[0]) for u in units[c["id"]]) for c in others], float)
                    nxt = others[int(rng.choice(len(others), p=w / w.sum()))]
                else:
                    nxt = cur if cur in avail else avail[0]
            audio, srcs = units[nxt["id"]].pop(0)
            pools["unit_use"][srcs[0]] += 1
            x, g = set_level(audio, nxt["level_db"] + float(rng.normal(0, 1.0)) - (active_rms_db(audio) - rms_db(audio)))
            if prev_end is None:
                start = cursor
            elif (cur is not nxt and rng.random() < 0.18 and prev_len > 1.3 * SR and len(x) > 1.3 * SR
                  and (prev_end - earlier_end) > 0.8 * SR):
                ov = rng.uniform(0.2, min(0.9, (prev_len / SR) - 0.4, (len(x) / SR) - 0.4,
                                          (prev_end - earlier_end) / SR - 0.4))
                start = prev_end - q(ov)
            else:
                gap = rng.uniform(0.15, 1.0) if cur is not nxt else rng.uniform(0.35, 1.2)
                start = prev_end + q(gap)
            mix.add("voice", start, x, role="utterance", speaker=nxt["id"], gender=nxt["gender"],
                    clips=srcs, gain_db=round(g, 2), _extra=(nxt["id"], nxt["gender"]))
            earlier_end = prev_end if prev_end is not None else 0
            prev_end, prev_len, cur = start + len(x), len(x), nxt
            cursor = prev_end
            n_turns += 1
        if n_turns == 0:
            break
        block_end = prev_end + (q(rng.uniform(0.8, 2.5)) if bed != "none" else 0)
        info = dict(kind="dialogue", start_s=round(block_start / SR, 3),
                    dur_s=round((block_end - block_start) / SR, 3), turns=n_turns, bed=str(bed))
        if bed != "none":
            snr = float(rng.uniform(0, 15))
            lvl = mean_speech - snr
            L = (block_end - block_start) / SR
            if bed == "music":
                x, srcs = excerpt(rng, mat, pools["bed_pool"], pools["bed_tracks"], L, level_db=lvl)
                kind = "song"
            else:
                x, srcs, _ = noise_excerpt(rng, mat, pools["noise_rows"], pools["noise_pool"], L)
                kind = "noise"
            x, g = set_level(fade(x, rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.5)), lvl)
            mix.add(kind, block_start, x, role=f"bed_{bed}", clips=srcs, gain_db=round(g, 2),
                    level_dbfs=round(lvl, 2), below_speech_db=round(snr, 2))
            info["bed_below_speech_db"] = round(snr, 2)
        blocks.append(info)
        t = block_end
        # --- interlude ------------------------------------------------------
        if t / SR < target - 8 and not exhausted:
            kinds = [k for k in ("song", "noise", "silence") if k != last_inter]
            p = np.array([{"song": 0.45, "noise": 0.3, "silence": 0.25}[k] for k in kinds])
            last_inter = str(rng.choice(kinds, p=p / p.sum()))
            t = interlude(last_inter, t)
    # make sure each mix is at least 60 s: finish with music/noise/silence
    while t / SR < 60:
        kinds = [k for k in ("song", "noise", "silence") if k != last_inter]
        last_inter = str(rng.choice(kinds))
        t = interlude(last_inter, t)
    if rng.random() < 0.5 and t / SR < 176:
        t = interlude("song" if last_inter != "song" else "silence", t)
    total = t
    return mix, cast, blocks, total


def render(mix, total, rng, mat, pools):
    n = total
    comp = {k: np.zeros(n, np.float32) for k in ("voice", "song", "noise", "room")}
    for kind in ("voice", "song", "noise"):
        for item in getattr(mix, kind):
            s, x = item[0], item[1]
            e = min(n, s + len(x))
            comp[kind][s:e] += x[: e - s]
    # room tone: a quiet dev "silence" clip looped under everything
    key = pools["room_pool"].pick(rng)
    if key is not None:
        x = mat.audio(key)
        lvl = rms_db(x)
        if lvl > -120:
            reps = xfade_concat([x] * (n // max(1, len(x) - 800) + 2), 0.05)[:n]
            target = min(lvl, float(rng.uniform(-72, -62)))
            comp["room"], g = set_level(reps, target)
            mix.recipe.append(dict(role="room_tone", start_s=0.0, dur_s=round(n / SR, 3), clips=[key],
                                   gain_db=round(g, 2), level_dbfs=round(target, 2)))
    y = sum(comp.values())
    peak = float(np.max(np.abs(y)))
    scale = 0.95 / peak if peak > 0.95 else 1.0
    for k in comp:
        comp[k] *= scale
    return comp, scale


def labels_from(mix, comp, n, scale):
    nf = n // HOP
    speakers = [[] for _ in range(nf)]
    for item in sorted(mix.voice, key=lambda it: it[0]):
        s, x, spk, g = item
        for f in range(s // HOP, min(nf, (s + len(x)) // HOP)):
            speakers[f].append((spk, g))
    song_db = windowed_db(comp["song"], nf)
    noise_db = windowed_db(comp["noise"], nf)
    lab = []
    for f in range(nf):
        if speakers[f]:
            sp = speakers[f]
            lab.append(("voice", "+".join(g for _, g in sp), "+".join(s for s, _ in sp)))
        elif song_db[f] >= FLOOR_DB:
            lab.append(("song", "", ""))
        elif noise_db[f] >= FLOOR_DB:
            lab.append(("noise", "", ""))
        else:
            lab.append(("silence", "", ""))
    runs = []
    for f, l in enumerate(lab):
        if runs and runs[-1][2] == l:
            runs[-1][1] = f + 1
        else:
            runs.append([f, f + 1, l])
    # merge short non-voice runs that sit between non-voice runs
    changed = True
    while changed:
        changed = False
        for i, r in enumerate(runs):
            if r[2][0] == "voice" or (r[1] - r[0]) * HOP / SR >= MIN_NONVOICE_RUN:
                continue
            left = runs[i - 1] if i > 0 else None
            right = runs[i + 1] if i + 1 < len(runs) else None
            if (left is None or left[2][0] != "voice") and (right is None or right[2][0] != "voice") \
                    and (left or right):
                tgt = left or right
                tgt[0], tgt[1] = min(tgt[0], r[0]), max(tgt[1], r[1])
                runs.pop(i)
                if left and right and left[2] == right[2]:
                    left[1] = right[1]
                    runs.remove(right)
                changed = True
                break
    return [(a * HOP / SR, b * HOP / SR) + tuple(l) for a, b, l in runs]


SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
CORPUS_OF = {"librispeech-train-clean-100": "libri", "emodb": "emodb", "cv": "cv", "ravdess": "ravdess",
             "nemo": "nemo"}
# casts per timeline folder; a cast member is (gender letter, source). Emo-DB and nEMO have one dev speaker of
# each gender, RAVDESS two: their casts cannot be larger.
L, E, C, R, N = SOURCES
TIMELINE_SPECS = {
    L: ["F", "M", "FM", "FFM", "FMMM"],
    E: ["F", "M", "FM", "MF"],
    C: ["F", "M", "FM", "FFM", "FMM", "FFMM"],
    R: ["F", "M", "FM", "FFM", "FFMM"],
    N: ["F", "M", "FM", "MF"],
    "mixed": [[("F", L), ("M", R)], [("F", C), ("M", E), ("M", C)], [("F", N), ("F", R), ("M", L)],
              [("F", E), ("M", N), ("F", C), ("M", R)]],
}


def timeline_specs():
    """``{folder: [cast, ...]}`` with every cast a list of (gender letter, source)."""
    out = {}
    for folder, casts in TIMELINE_SPECS.items():
        out[folder] = [[(g, folder) for g in c] if isinstance(c, str) else list(c) for c in casts]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data", help="folder with the manifests and clips")
    ap.add_argument("--out", required=True, help="output folder; one sub-folder per source (and 'mixed')")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED + 14)
    ap.add_argument("--bitrate", default="32k")
    ap.add_argument("--only", default=None, help="build only this folder")
    args = ap.parse_args(argv)
    data = Path(args.data)
    out_root = Path(args.out)
    rows = []
    for name in ("manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv"):
        rows += [r for r in csv.DictReader(open(data / name)) if r["split"] == "dev"]
    rows = [r for r in rows if not (r["label"] == "song" and r["subtype"] in ("vocal_pop", "a_cappella", "sung_vocals"))]
    mat = Material(data, rows)

    # --- pools (one speaker pool per source) -------------------------------------
    by_spk = defaultdict(list)
    for r in rows:
        if r["label"] == "voice" and r["gender"] in ("female", "male") and r["source"] in SOURCES and \
                r["subtype"] in ("read_speech", "acted_emotion"):
            by_spk[r["speaker"]].append(r)
    speakers_by_corpus = {src: {} for src in SOURCES}
    unit_cache = {}
    for s in sorted(by_spk):
        rs = sorted(by_spk[s], key=lambda r: r["path"])
        src = rs[0]["source"]
        unit_cache[s] = speech_units(np.random.default_rng([args.seed, len(unit_cache)]), mat, rs, CORPUS_OF[src])
        speakers_by_corpus[src][s] = dict(gender=rs[0]["gender"], language=rs[0]["language"],
                                          supply=sum(len(u[0]) for u in unit_cache[s]) / SR)
    bed_tracks = tracks_of(rows, BED_MUSIC)
    stretch_tracks = tracks_of(rows, STRETCH_MUSIC)
    noise_rows = {r["path"]: r for r in rows if r["label"] == "noise" and float(r["duration_s"]) >= 1.5}
    room = [r["path"] for r in rows if r["label"] == "silence"]
    pools = dict(bed_tracks=bed_tracks, bed_pool=Pool(bed_tracks), stretch_tracks=stretch_tracks,
                 stretch_pool=Pool(stretch_tracks), noise_rows=noise_rows, noise_pool=Pool(noise_rows),
                 room_pool=Pool([p for p in room if rms_db(mat.audio(p)) > -120] or room),
                 unit_use=defaultdict(int))
    spk_pool = Pool([s for c in speakers_by_corpus.values() for s in c])

    for f_i, (folder, casts) in enumerate(timeline_specs().items()):
        if args.only and folder != args.only:
            continue
        out = out_root / folder
        out.mkdir(parents=True, exist_ok=True)
        index = []
        for i, spec in enumerate(casts, start=1):
            name = f"{CORPUS_OF.get(folder, folder)}_{i:02d}"
            mrng = np.random.default_rng([args.seed, f_i, i])
            mix, cast, blocks, total = build_mix(i, spec, mrng, mat, pools, speakers_by_corpus, spk_pool, unit_cache)
            for c, (_, src) in zip(cast, spec):
                c["source"] = src
            comp, scale = render(mix, total, mrng, mat, pools)
            segs = labels_from(mix, comp, total, scale)
            y = sum(comp.values())
            write_opus(y, out / f"{name}.opus", args.bitrate)
            with open(out / f"{name}.labels.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["start", "end", "label", "gender", "speaker"])
                for a, b, lab, g, s in segs:
                    w.writerow([f"{a:.3f}", f"{b:.3f}", lab, g, s])
            with open(out / f"{name}.rttm", "w") as fh:
                for s, x, spk, _ in sorted(mix.voice, key=lambda it: (it[0], it[2])):
                    fh.write(f"SPEAKER {name} 1 {s / SR:.3f} {len(x) / SR:.3f} <NA> <NA> {spk} <NA> <NA>\n")
            tot = defaultdict(float)
            for a, b, lab, g, s in segs:
                tot[lab] += b - a
                if "+" in s:
                    tot["overlap"] += b - a
            sources = sorted({(c.split("@")[0].split("/") + ["", ""])[1] or c.split("@")[0]
                              for it in mix.recipe for c in it.get("clips", [])})
            recipe = dict(name=name, folder=folder, seed=args.seed, duration_s=round(total / SR, 3), sample_rate=SR,
                          energy_floor_dbfs=FLOOR_DB, output_scale=round(scale, 4),
                          speakers=cast, blocks=blocks, items=mix.recipe, sources=sources,
                          label_seconds={k: round(v, 2) for k, v in tot.items()})
            with open(out / f"{name}.json", "w") as fh:
                json.dump(recipe, fh, indent=1)
            index.append(dict(name=name, duration_s=f"{total / SR:.2f}", n_speakers=len(cast),
                              genders="+".join(c["gender"] for c in cast),
                              speakers="+".join(c["id"] for c in cast),
                              voice_sources="+".join(c["source"] for c in cast),
                              language="+".join(c["language"] for c in cast),
                              voice_s=f"{tot['voice']:.2f}", song_s=f"{tot['song']:.2f}",
                              noise_s=f"{tot['noise']:.2f}", silence_s=f"{tot['silence']:.2f}",
                              overlap_s=f"{tot['overlap']:.2f}",
                              beds="+".join(sorted({b['bed'] for b in blocks if b['kind'] == 'dialogue'}))))
            print(folder, name, index[-1]["duration_s"], index[-1]["genders"], index[-1]["language"], "voice",
                  index[-1]["voice_s"], flush=True)
        with open(out / "index.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(index[0]))
            w.writeheader()
            w.writerows(index)


if __name__ == "__main__":
    main()
