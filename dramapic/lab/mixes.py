"""Mix synthesis for stage 1: drama-like timelines built only from train-split clips, in the spirit of the dev mixes
(``../shared/data/make_dev_mixes.py``, which is never imported), augmented, with frame labels from their components;
and the window members' clip reels. The clips and their folds are :mod:`dramapic.lab.stage1_material`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..progress import ProgressHook, silent_hook
from ..result import FRAME_SAMPLES, GENDERS, SAMPLE_RATE, STAGE1_LABELS
from .data import NotEnoughData, _rms, apply_room, low_pass, reencode, room_impulse, smoke_hint, telephone
from .voice_windows import FAR_ROOMS
# the material (rows and folds) has its own module since mixes.py outgrew the size aim; the names stay importable
# from here, where the trainers, the song check and the lab's scripts import them
from .stage1_material import (EXTRA_MUSIC_MANIFEST, EXTRA_VOICE_MANIFEST, EXTRA_VOICE_SPEAKERS,  # noqa: F401
                              _Material, _source_group, stage1_manifests, stage1_rows)

log = logging.getLogger(__name__)

#: The reverberant tail of a training mix's room (a mix, and each clip of a reel, gets one with
#: ``ROOM_PROBABILITY``), in dB against the direct sound, drawn uniformly: up to the distant microphone where the room
#: is louder than the voice, as the gender model's rooms (``voice_windows.FAR_ROOMS``). Until 2026-12-07 it was
#: -14..-4 dB (near rooms only), and in the judge's distant rooms stage 1 called 11 % of the voice song; the far tail
#: lowered held-out DER and raised the count at two training seeds for 0.17 points of near stage-1 accuracy (model
#: card; RESULTS.md in ``experiments/issue14_far_field``). Read at every draw, so a lab script may set it back to
#: compare.
ROOM_TAIL_DB: tuple[float, float] = FAR_ROOMS.tail_db
#: How often a training mix (and each clip of a reel) goes through a room; read at every draw, like the tail. Twice
#: as often (0.6) was no better across corpora, near the microphone or far from it (``experiments/issue14_room_share``).
ROOM_PROBABILITY: float = 0.3


FRAME = FRAME_SAMPLES
LABEL_FLOOR_DB = -50.0           # a song / noise component at or above this (50 ms RMS) is audible
LABEL_FLOOR_WIN = 800            # 50 ms
MIN_NONVOICE_RUN_S = 0.25
_VOICE, _SONG, _NOISE, _SILENCE = range(4)
GENDER_CODE = {"": 0, "female": 1, "male": 2}


@dataclass(frozen=True)
class TrainingMix:
    """One stage-1 training timeline.

    Attributes
    ----------
    name : str
    fold : int
        Cross-fitting fold; the material (speakers, music tracks, noise source files) of different folds is disjoint.
    audio : np.ndarray, shape (n_samples,), float32
        The augmented mix (16 kHz mono; ``n_samples`` a multiple of 160).
    labels : np.ndarray, shape (n_frames,), int8
        Stage-1 label index per 10 ms frame (voice, song, noise, silence), by the dev mixes' rule.
    genders : np.ndarray, shape (n_frames,), int8
        0 = no single known gender, 1 = female, 2 = male (voice frames of one known-gender speaker).
    recipe : dict
        What was placed where, and the augmentation.
    """

    name: str
    fold: int
    audio: np.ndarray
    labels: np.ndarray
    genders: np.ndarray
    recipe: dict


def _frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    if n == 0:
        return np.full(0, -200.0)
    fr = x[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    fr = fr - fr.mean(axis=1, keepdims=True)
    return 20.0 * np.log10(np.sqrt((fr * fr).mean(axis=1)) + 1e-10)


def _runs(mask: np.ndarray, bridge: int) -> list[list[int]]:
    """Runs of True frames, joined across gaps shorter than ``bridge`` frames."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    runs: list[list[int]] = []
    for a, b in zip(edges[::2], edges[1::2]):
        if runs and a - runs[-1][1] < bridge:
            runs[-1][1] = int(b)
        else:
            runs.append([int(a), int(b)])
    return runs


def speech_units(x: np.ndarray, rng: np.random.Generator, *, min_s: float = 0.6) -> list[np.ndarray]:
    """Cut a speech clip (n,) into turn-sized units: phrases (speech runs split at pauses >= 0.3 s) grouped up to a
    random 2.5-7 s, each with 50 ms before and 80 ms after; internal pauses are kept (they are part of the turn)."""
    f = _frame_db(x)
    if f.size == 0:
        return []
    thr = max(f.max() - 40.0, np.percentile(f, 10) + 12.0, -60.0)
    phrases = [(a * FRAME, b * FRAME) for a, b in _runs(f >= thr, 30) if b - a >= 10]
    units, i = [], 0
    while i < len(phrases):
        target = rng.uniform(2.5, 7.0)
        j = i
        while j + 1 < len(phrases) and (phrases[j][1] - phrases[i][0]) / SAMPLE_RATE < target:
            j += 1
        s = max(0, phrases[i][0] - int(0.05 * SAMPLE_RATE))
        e = min(len(x), phrases[j][1] + int(0.08 * SAMPLE_RATE))
        if e - s >= min_s * SAMPLE_RATE:
            u = x[s:e][: (e - s) // FRAME * FRAME].astype(np.float32)
            units.append(_fade(u, 0.01, 0.01))
        i = j + 1
    return units


def _fade(x: np.ndarray, fin: float, fout: float) -> np.ndarray:
    x = x.astype(np.float32, copy=True)
    a, b = min(int(fin * SAMPLE_RATE), len(x) // 2), min(int(fout * SAMPLE_RATE), len(x) // 2)
    if a:
        x[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    if b:
        x[-b:] *= np.linspace(1, 0, b, dtype=np.float32)
    return x


def _xfade_concat(parts: list[np.ndarray], xf: float = 0.3) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        k = min(int(xf * SAMPLE_RATE), len(out) // 2, len(p) // 2)
        if k == 0:
            out = np.concatenate([out, p])
            continue
        ramp = np.linspace(0, 1, k, dtype=np.float32)
        out = np.concatenate([out[:-k], out[-k:] * (1 - ramp) + p[:k] * ramp, p[k:]])
    return out


def _active_db(x: np.ndarray) -> float:
    """Level of the loud part of a clip (frames within 30 dB of its loudest frame), dBFS."""
    f = _frame_db(x)
    if f.size == 0:
        return -200.0
    act = f[f >= f.max() - 30]
    return float(10 * np.log10(np.mean(10 ** (act / 10))))


def _set_level(x: np.ndarray, target_db: float, *, active: bool = False) -> np.ndarray:
    level = _active_db(x) if active else 20 * np.log10(_rms(x) + 1e-10)
    if level < -150:
        return x.astype(np.float32)
    return (x * 10 ** ((target_db - level) / 20)).astype(np.float32)


def _windowed_db(x: np.ndarray, n_frames: int) -> np.ndarray:
    """RMS in dB over a 50 ms window centred on each 10 ms frame (the dev mixes' labelling meter)."""
    p = np.concatenate([np.zeros(LABEL_FLOOR_WIN // 2), x.astype(np.float64), np.zeros(LABEL_FLOOR_WIN)])
    c = np.concatenate([[0.0], np.cumsum(p * p)])
    starts = np.arange(n_frames) * FRAME + FRAME // 2
    return 10 * np.log10((c[starts + LABEL_FLOOR_WIN] - c[starts]) / LABEL_FLOOR_WIN + 1e-20)


def label_frames(voice_items: Sequence[tuple[int, int, str]], song: np.ndarray, noise: np.ndarray,
                 n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame labels by the dev mixes' rule.

    ``voice`` wherever an utterance ``(start_sample, n_samples, gender)`` is placed; otherwise ``song`` where the song
    component is at or above -50 dBFS (50 ms RMS), else ``noise`` where the noise component is, else ``silence``;
    non-voice runs shorter than 0.25 s between two non-voice runs join their left neighbour.

    Returns
    -------
    labels : np.ndarray, shape (n_frames,), int8
    genders : np.ndarray, shape (n_frames,), int8
        1 female / 2 male where every speaker present has that gender, else 0.
    """
    count = np.zeros(n_frames, np.int16)
    female = np.zeros(n_frames, np.int16)
    male = np.zeros(n_frames, np.int16)
    for start, length, gender in voice_items:
        a, b = start // FRAME, min(n_frames, (start + length) // FRAME)
        count[a:b] += 1
        female[a:b] += gender == "female"
        male[a:b] += gender == "male"
    labels = np.where(_windowed_db(song, n_frames) >= LABEL_FLOOR_DB, _SONG,
                      np.where(_windowed_db(noise, n_frames) >= LABEL_FLOOR_DB, _NOISE, _SILENCE)).astype(np.int8)
    labels[count > 0] = _VOICE
    # merge short non-voice runs lying between non-voice runs into the left (else right) neighbour
    min_run = int(round(MIN_NONVOICE_RUN_S * SAMPLE_RATE / FRAME))
    changed = True
    while changed:
        changed = False
        edges = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [n_frames]])
        for i, (a, b) in enumerate(zip(starts, ends)):
            if labels[a] == _VOICE or b - a >= min_run:
                continue
            left = labels[starts[i - 1]] if i > 0 else None
            right = labels[starts[i + 1]] if i + 1 < len(starts) else None
            if left is not None and left != _VOICE and (right is None or right != _VOICE):
                labels[a:b] = left
                changed = True
            elif left is None and right is not None and right != _VOICE:
                labels[a:b] = right
                changed = True
    genders = np.where((count > 0) & (female == count), 1, np.where((count > 0) & (male == count), 2, 0))
    return labels, genders.astype(np.int8)




def _music_excerpt(rng: np.random.Generator, mat: _Material, tracks: list[list[str]], seconds: float,
                   level_db: float) -> np.ndarray:
    """``seconds`` of music from random tracks (joined with 0.3 s cross-fades when a track is too short); of up to 6
    random offsets per track the one whose 10 ms frames are most often audible at ``level_db`` is taken (like the dev
    mixes, which avoid near-silent passages)."""
    need = int(seconds * SAMPLE_RATE) // FRAME * FRAME
    parts, got = [], 0
    while got < need and len(parts) < 40:
        track = tracks[int(rng.integers(len(tracks)))]
        x = np.concatenate([mat.audio(p) for p in track])
        take = min(len(x), need - got + (int(0.3 * SAMPLE_RATE) if parts else 0))
        best, best_loud = 0, -1.0
        for _ in range(6):
            off = int(rng.integers(0, max(1, len(x) - take + 1)))
            seg = x[off:off + take]
            f = _frame_db(seg) + (level_db - 20 * np.log10(_rms(seg) + 1e-10))
            loud = float(np.mean(f >= LABEL_FLOOR_DB + 6)) if f.size else 0.0
            if loud > best_loud:
                best, best_loud = off, loud
            if loud >= 0.95:
                break
        parts.append(x[best:best + take])
        got = len(_xfade_concat(parts))
    y = _xfade_concat(parts)[:need]
    return np.pad(y, (0, need - len(y)))


def _noise_excerpt(rng: np.random.Generator, mat: _Material, rows: list[dict[str, str]], seconds: float,
                   same_class: bool) -> np.ndarray:
    need = int(seconds * SAMPLE_RATE) // FRAME * FRAME
    parts: list[np.ndarray] = []
    cls = None
    while sum(len(p) for p in parts) - 0.3 * SAMPLE_RATE * max(0, len(parts) - 1) < need and len(parts) < 40:
        pool = [r for r in rows if r["subtype"] == cls] if (same_class and cls) else rows
        r = pool[int(rng.integers(len(pool)))]
        cls = cls or r["subtype"]
        x = mat.audio(r["path"])
        f = _frame_db(x)
        on = np.flatnonzero(f >= f.max() - 40) if f.size else []
        if len(on):
            x = x[on[0] * FRAME:(on[-1] + 1) * FRAME]
        parts.append(x)
    y = _xfade_concat(parts, 0.3)[:need]
    return np.pad(y, (0, need - len(y)))


def _tracks(rows: list[dict[str, str]], mat: _Material) -> list[list[str]]:
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(mat.group[r["path"]] + "|" + r["subtype"], []).append(r["path"])
    return [sorted(v) for _, v in sorted(by.items())]


def build_training_mix(name: str, fold: int, mat: _Material, rng: np.random.Generator, *,
                       speakers: dict[str, list[tuple[np.ndarray, str]]], target_s: float,
                       augment: bool = True, music_excerpt=None) -> TrainingMix:
    """One drama-like timeline from fold ``fold``'s material: dialogue blocks of 1-4 speakers (gaps, occasional
    overlaps, music or noise beds 0-20 dB under the speech), song and noise stretches, silences over a quiet room
    tone; then (``augment``) gain, room reverberation, band-limiting / telephone filtering and a lossy re-encode.

    ``music_excerpt(rng, mat, tracks, seconds, level_db)`` cuts every music stretch and bed (default
    :func:`_music_excerpt`; the song-safe training passes one that also augments the music)."""
    music_excerpt = music_excerpt or _music_excerpt
    song_rows = mat.select(fold, "song")
    noise_rows = [r for r in mat.select(fold, "noise") if float(r["duration_s"]) >= 1.0] or mat.select(fold, "noise")
    bed_tracks = _tracks([r for r in song_rows if float(r["duration_s"]) >= 5.0], mat) or _tracks(song_rows, mat)
    all_tracks = _tracks(song_rows, mat)
    room_rows = mat.select(None, "silence")
    names = sorted(speakers)
    n_spk = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.35, 0.25, 0.15]))
    cast = [names[i] for i in rng.choice(len(names), size=min(n_spk, len(names)), replace=False)]
    level = {s: float(rng.uniform(-30, -16)) for s in cast}
    mean_speech = float(np.mean(list(level.values())))
    p_bed = rng.dirichlet([2.0, 2.0, 1.5])
    voice: list[tuple[int, np.ndarray, str, str]] = []
    song: list[tuple[int, np.ndarray]] = []
    noise: list[tuple[int, np.ndarray]] = []
    recipe: dict[str, Any] = {"fold": fold, "cast": cast, "blocks": []}
    q = lambda s: int(round(s * SAMPLE_RATE / FRAME)) * FRAME  # noqa: E731  (seconds -> samples on the grid)

    def interlude(kind: str, t: int) -> int:
        if kind == "song":
            length, lvl = float(rng.uniform(4, 25)), float(rng.uniform(-32, -14))
            x = music_excerpt(rng, mat, all_tracks, length, lvl)
            song.append((t, _set_level(_fade(x, rng.uniform(0.05, 1.0), rng.uniform(0.1, 1.5)), lvl)))
        elif kind == "noise":
            length = float(rng.uniform(2, 12))
            x = _noise_excerpt(rng, mat, noise_rows, length, same_class=rng.random() < 0.6)
            noise.append((t, _set_level(_fade(x, 0.05, 0.2), float(rng.uniform(-38, -18)))))
        else:
            length = float(rng.uniform(0.5, 4))
        recipe["blocks"].append({"kind": kind, "start_s": round(t / SAMPLE_RATE, 2), "dur_s": round(length, 2)})
        return t + q(length)

    t = 0
    first = str(rng.choice(["song", "noise", "silence", "none"], p=[0.35, 0.25, 0.2, 0.2]))
    if first != "none":
        t = interlude(first, t)
    last = first
    cursor_unit = {s: int(rng.integers(len(speakers[s]))) for s in cast}
    while t < target_s * SAMPLE_RATE - 6 * SAMPLE_RATE:
        block_s = float(rng.uniform(8, 30))
        bed = str(rng.choice(["none", "music", "noise"], p=p_bed))
        block_start = t
        cursor = t + q(rng.uniform(0.8, 2.5) if bed != "none" else rng.uniform(0.1, 0.6))
        cur, prev_end, prev_len, earlier_end = None, None, 0, 0
        while cursor - block_start < block_s * SAMPLE_RATE:
            if cur is None or len(cast) == 1:
                nxt = cast[int(rng.integers(len(cast)))]
            else:
                others = [s for s in cast if s != cur]
                nxt = others[int(rng.integers(len(others)))] if rng.random() < 0.85 else cur
            unit, gender = speakers[nxt][cursor_unit[nxt] % len(speakers[nxt])]
            cursor_unit[nxt] += 1
            x = _set_level(unit, level[nxt] + float(rng.normal(0, 1.5)), active=True)
            if prev_end is None:
                start = cursor
            elif (nxt != cur and rng.random() < 0.15 and prev_len > 1.3 * SAMPLE_RATE
                  and len(x) > 1.3 * SAMPLE_RATE and prev_end - earlier_end > 0.8 * SAMPLE_RATE):
                start = prev_end - q(rng.uniform(0.2, 0.9))
            else:
                start = prev_end + q(rng.uniform(0.1, 1.0) if nxt != cur else rng.uniform(0.3, 1.2))
            voice.append((start, x, nxt, gender))
            earlier_end = prev_end if prev_end is not None else 0
            prev_end, prev_len, cur = start + len(x), len(x), nxt
            cursor = prev_end
        block_end = prev_end + (q(rng.uniform(0.5, 2.5)) if bed != "none" else 0)
        if bed != "none":
            bed_level = mean_speech - float(rng.uniform(0, 20))
            length = (block_end - block_start) / SAMPLE_RATE
            if bed == "music":
                x = music_excerpt(rng, mat, bed_tracks, length, bed_level)
                song.append((block_start, _set_level(_fade(x, rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.5)),
                                                     bed_level)))
            else:
                x = _noise_excerpt(rng, mat, noise_rows, length, same_class=True)
                noise.append((block_start, _set_level(_fade(x, 0.3, 0.5), bed_level)))
        recipe["blocks"].append({"kind": "dialogue", "start_s": round(block_start / SAMPLE_RATE, 2),
                                 "dur_s": round((block_end - block_start) / SAMPLE_RATE, 2), "bed": bed})
        t = block_end
        if t < target_s * SAMPLE_RATE - 6 * SAMPLE_RATE:
            kinds = [k for k in ("song", "noise", "silence") if k != last]
            p = np.array([{"song": 0.4, "noise": 0.4, "silence": 0.2}[k] for k in kinds])
            last = str(rng.choice(kinds, p=p / p.sum()))
            t = interlude(last, t)
    if rng.random() < 0.4:
        t = interlude("song" if last != "song" else "noise", t)

    n = t
    comp = {k: np.zeros(n, np.float32) for k in ("voice", "song", "noise")}
    for start, x, _, _ in voice:
        comp["voice"][start:start + len(x)] += x[: n - start]
    for kind, items in (("song", song), ("noise", noise)):
        for start, x in items:
            comp[kind][start:start + len(x)] += x[: n - start]
    aug: dict[str, Any] = {}
    if augment:
        gain = float(rng.uniform(-10, 6))
        aug["gain_db"] = round(gain, 1)
        for k in comp:
            comp[k] *= 10 ** (gain / 20)
        if rng.random() < ROOM_PROBABILITY:
            ir = room_impulse(rng, tail_db=ROOM_TAIL_DB)
            keys = ("voice",) if rng.random() < 0.5 else tuple(comp)
            for k in keys:
                comp[k] = apply_room(comp[k], ir)
            aug["room"] = {"rt60_s": round(len(ir) / SAMPLE_RATE, 2), "on": list(keys)}
        r = rng.random()
        if r < 0.15:
            for k in comp:
                comp[k] = telephone(comp[k])
            aug["filter"] = "telephone 300-3400 Hz"
        elif r < 0.3:
            cutoff = float(rng.uniform(3500, 7000))
            for k in comp:
                comp[k] = low_pass(comp[k], cutoff)
            aug["filter"] = f"low-pass {cutoff:.0f} Hz"
    room = np.zeros(n, np.float32)
    if room_rows:
        x = mat.audio(room_rows[int(rng.integers(len(room_rows)))]["path"])
        if _rms(x) > 1e-7:
            reps = np.tile(x, n // max(1, len(x)) + 1)[:n]
            room = _set_level(reps, min(20 * np.log10(_rms(x) + 1e-12), float(rng.uniform(-80, -58))))
    peak = float(np.max(np.abs(sum(comp.values()) + room))) if n else 0.0
    scale = 0.98 / peak if peak > 0.98 else 1.0
    for k in comp:
        comp[k] *= scale
    n_frames = n // FRAME
    labels, genders = label_frames([(s, len(x), g) for s, x, _, g in voice], comp["song"], comp["noise"], n_frames)
    audio = (sum(comp.values()) + room * scale).astype(np.float32)
    if augment and rng.random() < 0.6:
        codec = str(rng.choice(["opus", "aac", "mp3"], p=[0.5, 0.3, 0.2]))
        rate = int(rng.choice({"opus": [16, 24, 32, 48], "aac": [32, 48, 64, 96], "mp3": [32, 48, 64]}[codec]))
        audio = reencode(audio, codec, rate)
        aug["codec"] = f"{codec} {rate} kbit/s"
    recipe["augmentation"] = aug
    return TrainingMix(name=name, fold=fold, audio=np.clip(audio, -1, 1), labels=labels, genders=genders,
                       recipe=recipe)


def _augment_piece(x: np.ndarray, rng: np.random.Generator, aug: dict[str, Any]) -> np.ndarray:
    """Per-clip augmentation of a reel: a room (``ROOM_PROBABILITY``), p=0.15 telephone band or p=0.15 low-pass."""
    if rng.random() < ROOM_PROBABILITY:
        x = apply_room(x, room_impulse(rng, tail_db=ROOM_TAIL_DB))
        aug["room"] = aug.get("room", 0) + 1
    r = rng.random()
    if r < 0.15:
        x = telephone(x)
        aug["telephone"] = aug.get("telephone", 0) + 1
    elif r < 0.3:
        x = low_pass(x, float(rng.uniform(3500, 7000)))
        aug["low_pass"] = aug.get("low_pass", 0) + 1
    return x


def build_clip_reels(manifest_csv: Path, *, seed: int = 0, n_folds: int = 2, seconds: dict[str, float] | None = None,
                     reel_s: float = 60.0, max_clips: int | None = None, extra_voices: bool = False,
                     excluded_voice_sources: Sequence[str] = (),
                     excluded_music_sources: Sequence[str] = ()) -> list[TrainingMix]:
    """Isolated train-split clips laid end to end ("reels"), for the window members only (the material of
    :func:`stage1_rows`, as the mixes).

    Mixes use a small part of the noise and music clips; reels show the window members many more of them. Per fold
    and per label, clips (long ones cut to a random excerpt of at most 8 s; speech cut into turn units) are placed
    with 0.1-0.4 s gaps, each at a random level (-40..-14 dBFS active level; silence clips keep theirs) and
    augmented like the mixes (room, telephone, low-pass); every ``reel_s`` piece is then re-encoded with p=0.5
    (Opus / AAC / MP3). Labels follow the mixes' rule (voice where a unit is placed, song / noise where that
    component is at or above -50 dBFS over 50 ms, else silence).

    Parameters
    ----------
    manifest_csv : Path
        The data manifest (:func:`stage1_rows`).
    seed : int
        Seeds the folds (those of :func:`build_training_mixes` given the same arguments), the draws and every
        reel.
    n_folds : int
        Folds of the material, disjoint in speakers and sources.
    seconds : dict, optional
        Audio per fold and label (default voice 900 s, song 1,200 s, noise 1,800 s, silence: every clip).
    reel_s : float
        A reel is closed (and re-encoded on its own) once it holds this many seconds.
    max_clips : int, optional
        Smoke runs: at most this many clips per fold and label.
    extra_voices, excluded_voice_sources, excluded_music_sources
        As :func:`stage1_rows`.

    Returns
    -------
    list of TrainingMix
        Reels named ``trainreel_f<fold>_<label>_<k>``.
    """
    manifest_csv = Path(manifest_csv)
    budget = {"voice": 900.0, "song": 1200.0, "noise": 1800.0, "silence": 1e9, **(seconds or {})}
    rows = stage1_rows(manifest_csv, extra_voices=extra_voices, excluded_voice_sources=excluded_voice_sources,
                       excluded_music_sources=excluded_music_sources)
    mat = _Material(rows, manifest_csv.parent, n_folds=n_folds, seed=seed)
    reels: list[TrainingMix] = []
    gap = lambda r: int(r.uniform(0.1, 0.4) * SAMPLE_RATE) // FRAME * FRAME  # noqa: E731
    for fold in range(n_folds):
        for label in ("voice", "song", "noise", "silence"):
            rng = np.random.default_rng([seed, 17, fold, STAGE1_LABELS.index(label)])
            rows = mat.select(fold, label)
            rows = [rows[i] for i in rng.permutation(len(rows))][: max_clips if max_clips is not None else None]
            pieces: list[np.ndarray] = []
            for r in rows:
                x = mat.audio(r["path"])
                if label == "voice":
                    units = speech_units(x, rng)
                    pieces += [units[i] for i in rng.permutation(len(units))[:2]]
                else:
                    n = min(len(x), int(8.0 * SAMPLE_RATE))
                    off = int(rng.integers(0, len(x) - n + 1))
                    pieces.append(x[off:off + n][: n // FRAME * FRAME].astype(np.float32))
            k, t, total = 0, 0, 0.0
            comp: list[tuple[int, np.ndarray]] = []
            aug: dict[str, Any] = {}

            def flush() -> None:
                nonlocal k, t, comp, aug
                if not comp:
                    return
                n = t
                signal = np.zeros(n, np.float32)
                for start, x in comp:
                    signal[start:start + len(x)] += x
                voice_items = [(start, len(x), "") for start, x in comp] if label == "voice" else []
                zeros = np.zeros(n, np.float32)
                labels, genders = label_frames(voice_items, signal if label == "song" else zeros,
                                               signal if label in ("noise", "silence") else zeros, n // FRAME)
                audio = np.clip(signal, -1, 1)
                if rng.random() < 0.5:
                    codec = str(rng.choice(["opus", "aac", "mp3"], p=[0.5, 0.3, 0.2]))
                    rate = int(rng.choice({"opus": [16, 24, 32, 48], "aac": [32, 48, 64, 96],
                                           "mp3": [32, 48, 64]}[codec]))
                    audio = reencode(audio, codec, rate)
                    aug["codec"] = f"{codec} {rate} kbit/s"
                reels.append(TrainingMix(name=f"trainreel_f{fold}_{label}_{k:03d}", fold=fold, audio=audio,
                                         labels=labels, genders=genders, recipe={"fold": fold, "label": label,
                                                                                 "augmentation": dict(aug)}))
                k, t, comp, aug = k + 1, 0, [], {}

            for x in pieces:
                if total >= budget[label]:
                    break
                if label == "silence":
                    x = x.copy()
                else:
                    x = _augment_piece(_set_level(x, float(rng.uniform(-40, -14)), active=True), rng, aug)
                comp.append((t, x))
                t += len(x) + gap(rng)
                total += len(x) / SAMPLE_RATE
                if t >= reel_s * SAMPLE_RATE:
                    flush()
            flush()
    return reels


def _lacking(manifest_csv: Path, fold: int, n_folds: int, lacking: Sequence[str], max_clips: int | None) -> str:
    """What :func:`build_training_mixes` says when a fold lacks material."""
    return (f"{manifest_csv}: fold {fold + 1} of {n_folds} of stage 1's training mixes has no train "
            f"{' and no '.join(lacking)} (speakers and recordings are split across {n_folds} folds, so stage 1 needs "
            f"train voice, song and noise clips of at least {n_folds} speakers or recordings each)"
            + (smoke_hint(max_clips) if any(x.startswith("voice") for x in lacking) else ""))


def build_training_mixes(manifest_csv: Path, *, seed: int = 0, n_folds: int = 2, seconds_per_fold: float = 3600.0,
                         mix_s: tuple[float, float] = (45.0, 120.0), augment: bool = True,
                         max_clips: int | None = None, extra_voices: bool = False,
                         excluded_voice_sources: Sequence[str] = (), excluded_music_sources: Sequence[str] = (),
                         progress: ProgressHook = silent_hook) -> list[TrainingMix]:
    """Drama-like stage-1 training mixes from ``split == "train"`` clips only (seeded): ``manifest_csv``'s, plus the
    extra vocal music's when it lies beside it (:func:`stage1_rows`).

    Material is divided into ``n_folds`` disjoint folds by speaker (voice) and by original recording (music, noise):
    a mix uses one fold's material only, so members fitted on the other folds never heard it (cross-fitting).

    ``max_clips`` (smoke runs) caps the voice clips per fold; ``extra_voices`` and the ``excluded_*_sources`` choose
    the material as in :func:`stage1_rows`.

    Returns
    -------
    list of TrainingMix
        About ``seconds_per_fold`` seconds of audio per fold.

    Raises
    ------
    NotEnoughData
        A fold has no train voice clip with speech, no song or no noise clip (an InputError: the mixes draw on all
        three, and a fold without one failed deep in the mixing with a numpy ValueError traceback).
    """
    manifest_csv = Path(manifest_csv)
    rows = stage1_rows(manifest_csv, extra_voices=extra_voices, excluded_voice_sources=excluded_voice_sources,
                       excluded_music_sources=excluded_music_sources)
    mat = _Material(rows, manifest_csv.parent, n_folds=n_folds, seed=seed)
    for fold in range(n_folds):  # every fold's material before any clip is decoded
        lacking = [label for label in ("voice", "song", "noise") if not mat.select(fold, label)]
        if lacking:
            raise NotEnoughData(_lacking(manifest_csv, fold, n_folds, lacking, max_clips))
    mixes: list[TrainingMix] = []
    total = n_folds * seconds_per_fold
    for fold in range(n_folds):
        rng = np.random.default_rng([seed, 11, fold])
        speakers: dict[str, list[tuple[np.ndarray, str]]] = {}
        voice_rows = mat.select(fold, "voice")
        if max_clips is not None and len(voice_rows) > max_clips:
            voice_rows = [voice_rows[i] for i in sorted(rng.choice(len(voice_rows), size=max_clips, replace=False))]
        for r in voice_rows:
            key = r["speaker"] or r["path"]
            for unit in speech_units(mat.audio(r["path"]), rng):
                speakers.setdefault(key, []).append((unit, r["gender"] if r["gender"] in GENDERS else ""))
        if not speakers:
            raise NotEnoughData(_lacking(manifest_csv, fold, n_folds, ["voice clip with speech"], max_clips))
        for key in speakers:
            order = rng.permutation(len(speakers[key]))
            speakers[key] = [speakers[key][i] for i in order]
        done = 0.0
        k = 0
        while done < seconds_per_fold:
            mix = build_training_mix(f"trainmix_f{fold}_{k:03d}", fold, mat, np.random.default_rng([seed, 13, fold, k]),
                                     speakers=speakers, target_s=float(rng.uniform(*mix_s)), augment=augment)
            mixes.append(mix)
            done += len(mix.audio) / SAMPLE_RATE
            k += 1
            progress("mixes", min(fold * seconds_per_fold + done, total), total)
    return mixes

