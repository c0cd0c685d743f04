"""How one cross-corpus timeline is made: its material (the ``dev`` clips of the data), its plan, its audio and its
reference labels (the recipe in :mod:`dramapic.lab.timelines`, which builds and keeps the tree of them).

Ported from ``dramapic/lab/experiments/issue14_gender/make_timelines.py`` with the same random draws in the same
order: the draws, the float32 arithmetic and the order of the operations here decide every published timeline's
labels and samples, so a change that moves any of them is a new ``timelines.FORMAT``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .. import media
from ..errors import InputError
from ..result import SAMPLE_RATE
from .data import DATA_COLUMNS, DATA_MANIFESTS, check_listed_clips, read_manifest

SR = SAMPLE_RATE
HOP = 160                       # 10 ms label grid
FLOOR_DB = -50.0                # energy floor that separates silence from sound
FLOOR_WIN = 800                 # 50 ms window for the floor test
MIN_NONVOICE_RUN = 0.25         # s; shorter song/noise/silence flickers are merged
MIN_DURATION_S = 60.0           # every timeline is at least this long (finished with music/noise/silence)
MAX_DURATION_S = 180.0          # the planned length is capped here (a last interlude may pass it)
#: the voice sources a speaker may come from (the names of crosscorpus.SOURCES); a fixed list, because the order
#: and number of speakers seed each speaker's turns: a new source here changes every timeline
VOICE_SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
_VOICE_SUBTYPES = ("read_speech", "acted_emotion")
_SUNG = ("vocal_pop", "a_cappella", "sung_vocals")
BED_MUSIC = frozenset({"orchestral_bgm", "rock_song", "electronic_music", "film_score", "instrumental_electronic",
                       "instrumental_piano", "instrumental_lofi"})
STRETCH_MUSIC = BED_MUSIC | {"guitar_stem", "street_music"}
#: short file-name stem per folder (``libri_01``); other folders use their own name
STEM = MappingProxyType({"librispeech-train-clean-100": "libri"})
GENDER_WORDS = {"F": "female", "M": "male"}

CastMember = tuple[str, str]      # (gender letter "F" / "M", voice source)
Cast = tuple[CastMember, ...]


# ------------------------------------------------------------------------------------------------ audio helpers
# These keep the experiment's float32 arithmetic on purpose (lab/mixes.py has float64 cousins): any change in
# rounding can move a label edge by a frame and the published timelines would no longer be reproduced.

def read_clip(path: Path) -> np.ndarray:
    """A clip as float32 mono at 16 kHz: libsndfile when it reads the file at 16 kHz, else ffmpeg (decoded and
    resampled by ffmpeg, as the experiment did)."""
    import soundfile as sf

    if not path.is_file():
        raise InputError(f"clip listed in the manifest not found: {path}")
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        if sr == SR:
            return x.mean(1)
    except (RuntimeError, sf.LibsndfileError):
        pass
    return media.decode_audio(media.probe(path), sample_rate=SR)


def _db(v: float) -> float:
    return 20 * np.log10(max(float(v), 1e-10))


def _frame_db(x: np.ndarray) -> np.ndarray:
    """Level in dB of each 10 ms frame (DC removed), shape (len(x) // 160,)."""
    n = len(x) // HOP
    if n == 0:
        return np.full(0, -200.0)
    fr = x[: n * HOP].reshape(n, HOP)
    fr = fr - fr.mean(1, keepdims=True)
    return 20 * np.log10(np.sqrt((fr ** 2).mean(1)) + 1e-10)


def _windowed_db(x: np.ndarray, n_frames: int) -> np.ndarray:
    """RMS in dB over a 50 ms window centred on each 10 ms frame, shape (n_frames,)."""
    p = np.concatenate([np.zeros(FLOOR_WIN // 2, np.float32), x, np.zeros(FLOOR_WIN, np.float32)])
    c = np.concatenate([[0.0], np.cumsum(p.astype(np.float64) ** 2)])
    starts = np.arange(n_frames) * HOP + HOP // 2
    e = (c[starts + FLOOR_WIN] - c[starts]) / FLOOR_WIN
    return 10 * np.log10(e + 1e-20)


def _active_rms_db(x: np.ndarray) -> float:
    """Level of the loud part of a clip (frames within 30 dB of its peak frame)."""
    f = _frame_db(x)
    if len(f) == 0:
        return -200.0
    act = f[f >= f.max() - 30]
    return 10 * np.log10(np.mean(10 ** (act / 10)))


def _rms_db(x: np.ndarray) -> float:
    return _db(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if len(x) else -200.0


def _fade(x: np.ndarray, fin: float, fout: float) -> np.ndarray:
    x = x.copy()
    a, b = int(fin * SR), int(fout * SR)
    if a:
        x[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    if b:
        x[-b:] *= np.linspace(1, 0, b, dtype=np.float32)
    return x


def _xfade_concat(parts: Sequence[np.ndarray], xf: float = 0.3) -> np.ndarray:
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


def _q(t: float) -> int:
    """A time in seconds snapped to the 10 ms grid, in samples."""
    return int(round(t * SR / HOP)) * HOP


def _snap(x: np.ndarray) -> np.ndarray:
    x = x[: len(x) // HOP * HOP]
    return _fade(x, 0.01, 0.01)


def _set_level(x: np.ndarray, target_db: float) -> tuple[np.ndarray, float]:
    g = target_db - _rms_db(x)
    return (x * 10 ** (g / 20)).astype(np.float32), g


def _runs(mask: np.ndarray, bridge: int) -> list[list[int]]:
    """[start, end) frame runs of ``mask``, runs separated by fewer than ``bridge`` frames joined."""
    runs: list[list[int]] = []
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


def _speech_mask(x: np.ndarray) -> np.ndarray:
    f = _frame_db(x)
    thr = max(f.max() - 40, np.percentile(f, 10) + 12, -60)
    return f >= thr


def speech_span(x: np.ndarray) -> tuple[int, int]:
    """[start, end) samples of a clip's speech, a little margin kept."""
    runs = [r for r in _runs(_speech_mask(x), 30) if r[1] - r[0] >= 8]
    if not runs:
        return 0, 0
    return max(0, runs[0][0] * HOP - int(0.04 * SR)), min(len(x), runs[-1][1] * HOP + int(0.06 * SR))


def _trim_quiet_edges(x: np.ndarray, rel_db: float = 40.0) -> np.ndarray:
    """Drop leading/trailing frames more than ``rel_db`` below the loudest frame."""
    f = _frame_db(x)
    on = np.nonzero(f >= f.max() - rel_db)[0] if len(f) else []
    if len(on) == 0:
        return x
    return x[on[0] * HOP:(on[-1] + 1) * HOP]


def _phrase_spans(x: np.ndarray) -> list[tuple[int, int]]:
    """Speech runs split at pauses >= 0.3 s, in samples."""
    return [(a * HOP, b * HOP) for a, b in _runs(_speech_mask(x), 30) if b - a >= 10]


# ------------------------------------------------------------------------------------------------ material

class _Pool:
    """Least-used-first picker over a list of keys (deterministic given the generator)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(keys)
        self.used: dict[str, int] = defaultdict(int)

    def pick(self, rng: np.random.Generator, ok: Callable[[str], bool] = lambda k: True) -> str | None:
        cand = [k for k in self.keys if ok(k)]
        if not cand:
            return None
        m = min(self.used[k] for k in cand)
        cand = [k for k in cand if self.used[k] == m]
        k = cand[int(rng.integers(len(cand)))]
        self.used[k] += 1
        return k


def _tracks_of(rows: Sequence[Mapping[str, str]], subtypes: frozenset[str]) -> dict[str, list[str]]:
    """Music clips grouped into tracks (``<track>_NN`` pieces, or the ``speaker`` column of the extra music),
    keyed ``track|subtype``, pieces in order."""
    t: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r["label"] == "song" and r["subtype"] in subtypes:
            stem = r["path"][: -len(Path(r["path"]).suffix)]
            m = re.match(r"^(.*)_(\d\d)$", stem)
            track = r["speaker"] if r["path"].startswith("extra/") and r["speaker"] else (m.group(1) if m else stem)
            t[track + "|" + r["subtype"]].append(r["path"])
    return {k: sorted(v) for k, v in t.items()}


_Unit = tuple[np.ndarray, list[str]]      # (audio, the clip spans it came from)
#: the columns of every data manifest the timelines read
_COLUMNS = (*DATA_COLUMNS, "language")


class Material:
    """The dev rows and clips (decoded once, kept), the speakers per source, their turn-sized units (cut when first
    needed, so a build that casts only some sources decodes only their voices) and the least-used-first pools."""

    def __init__(self, data: Path, *, seed: int) -> None:
        self.data = data
        self.seed = seed
        rows: list[dict[str, str]] = []
        for name in DATA_MANIFESTS:  # each manifest's columns: the first row's alone let an extra one lack one
            rows += [r for r in read_manifest(data / name, columns=_COLUMNS) if r["split"] == "dev"]
        if not rows:
            raise InputError(f"the manifests under {data} have no dev rows")
        rows = [r for r in rows if not (r["label"] == "song" and r["subtype"] in _SUNG)]
        self._cache: dict[str, np.ndarray] = {}
        by_spk: dict[str, list[dict[str, str]]] = defaultdict(list)
        for r in rows:
            if r["label"] == "voice" and r["gender"] in ("female", "male") and r["source"] in VOICE_SOURCES and \
                    r["subtype"] in _VOICE_SUBTYPES:
                by_spk[r["speaker"]].append(r)
        #: speaker -> its dev rows (by path); the rank of a speaker among all of them seeds its units
        self._rows = {s: sorted(by_spk[s], key=lambda r: r["path"]) for s in sorted(by_spk)}
        self._rank = {s: i for i, s in enumerate(self._rows)}
        self._units: dict[str, list[_Unit]] = {}
        self.speakers: dict[str, dict[str, dict[str, str]]] = {src: {} for src in VOICE_SOURCES}
        for s, rs in self._rows.items():
            self.speakers[rs[0]["source"]][s] = {"gender": rs[0]["gender"], "language": rs[0]["language"]}
        self.unit_use: dict[str, int] = defaultdict(int)
        self.speaker_use: dict[str, int] = defaultdict(int)
        self.bed_tracks = _tracks_of(rows, BED_MUSIC)
        self.stretch_tracks = _tracks_of(rows, STRETCH_MUSIC)
        self.noise_rows = {r["path"]: r for r in rows if r["label"] == "noise" and float(r["duration_s"]) >= 1.5}
        for what, found in (("music tracks for beds", self.bed_tracks), ("music tracks", self.stretch_tracks),
                            ("noise clips of 1.5 s or more", self.noise_rows)):
            if not found:
                raise InputError(f"the data under {data} have no dev {what}: cannot build timelines")
        room = [r["path"] for r in rows if r["label"] == "silence"]
        # every clip the draws may read is there before the first timeline is cut: a missing one was found when its
        # turn came, after the timelines before it
        check_listed_clips(data / p for p in [*(r["path"] for rs in self._rows.values() for r in rs),
                                              *(p for t in self.bed_tracks.values() for p in t),
                                              *(p for t in self.stretch_tracks.values() for p in t),
                                              *self.noise_rows, *room])
        self.bed_pool, self.stretch_pool = _Pool(self.bed_tracks), _Pool(self.stretch_tracks)
        self.noise_pool = _Pool(self.noise_rows)
        self.room_pool = _Pool([p for p in room if _rms_db(self.audio(p)) > -120] or room)

    def audio(self, path: str) -> np.ndarray:
        if path not in self._cache:
            self._cache[path] = read_clip(self.data / path)
        return self._cache[path]

    def units(self, speaker: str) -> list[_Unit]:
        """The speaker's turn-sized units; each speaker has its own generator (seed, rank among all speakers), so
        they do not depend on which speakers were cut before."""
        if speaker not in self._units:
            rs = self._rows[speaker]
            source = rs[0]["source"]
            self._units[speaker] = _speech_units(np.random.default_rng([self.seed, self._rank[speaker]]), self, rs,
                                                 STEM.get(source, source))
        return self._units[speaker]

    def supply(self, speaker: str) -> float:
        """Seconds of speech in the speaker's units."""
        return sum(len(u[0]) for u in self.units(speaker)) / SR


def _speech_units(rng: np.random.Generator, mat: Material, rows: Sequence[Mapping[str, str]],
                  corpus: str) -> list[_Unit]:
    """A speaker's clips cut into turn-sized units: short-clip corpora trimmed and taken one or two clips at a time
    (Common Voice one), read speech (LibriSpeech) cut at pauses into 2.5-7 s phrases."""
    units: list[_Unit] = []
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
                    parts.append(np.zeros(_q(rng.uniform(0.25, 0.5)), np.float32))
                parts.append(trimmed[j][0])
                srcs.append(f"{trimmed[j][1]}@{trimmed[j][2]:.2f}")
            units.append((_snap(np.concatenate(parts)), srcs))
            i += k
        return units
    for r in rows:
        x = mat.audio(r["path"])
        phrases = _phrase_spans(x)
        i = 0
        while i < len(phrases):
            target = rng.uniform(2.5, 7.0)
            j = i
            while j + 1 < len(phrases) and (phrases[j][1] - phrases[i][0]) / SR < target:
                j += 1
            s = max(0, phrases[i][0] - int(0.05 * SR))
            e = min(len(x), phrases[j][1] + int(0.08 * SR))
            if e - s >= int(0.8 * SR):
                units.append((_snap(x[s:e]), [f"{r['path']}@{s / SR:.2f}-{e / SR:.2f}"]))
            i = j + 1
    return units


# ------------------------------------------------------------------------------------------------ the mixer

class Mix:
    """The placed components of one timeline and its recipe (every item with where it came from)."""

    def __init__(self) -> None:
        self.voice: list[tuple] = []          # (start_sample, audio, speaker, gender)
        self.song: list[tuple] = []           # (start_sample, audio)
        self.noise: list[tuple] = []
        self.recipe: list[dict[str, Any]] = []

    def add(self, kind: str, start: int, x: np.ndarray, **info: Any) -> None:
        getattr(self, kind).append((start, x) + tuple(info.pop("_extra", ())))
        self.recipe.append(dict(role=info.pop("role", kind), start_s=round(start / SR, 3),
                                dur_s=round(len(x) / SR, 3), **info))


def _excerpt(rng: np.random.Generator, mat: Material, pool: _Pool, tracks: Mapping[str, list[str]],
             length_s: float, avoid_quiet: bool = True, level_db: float | None = None) -> tuple[np.ndarray, list[str]]:
    """A music excerpt of ``length_s`` from least-used tracks (joined if a track is too short), preferring the
    offset with the fewest frames below the floor at ``level_db``."""
    need = _q(length_s)
    parts: list[np.ndarray] = []
    srcs: list[str] = []
    got = 0
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
            f = _frame_db(seg) + (level_db - _rms_db(seg))
            loud = np.mean(f >= FLOOR_DB + 6) if len(f) else 0
            if best is None or loud > best[2]:
                best = (off, seg, loud)
            if loud >= 0.95:
                break
        off, seg = best[0], best[1]
        parts.append(seg)
        srcs.append(f"{key.split('|')[0]}@{off / SR:.2f}-{(off + len(seg)) / SR:.2f}")
        got = len(_xfade_concat(parts))
    y = _xfade_concat(parts)[:need]
    return y, srcs


def _noise_excerpt(rng: np.random.Generator, mat: Material, length_s: float,
                   same_class: bool = True) -> tuple[np.ndarray, list[str], str]:
    """Noise clips (crossfaded, least-used first, of one class when ``same_class``) to ``length_s``."""
    noise_rows, pool = mat.noise_rows, mat.noise_pool
    need = _q(length_s)
    parts: list[np.ndarray] = []
    srcs: list[str] = []
    cls = None
    while sum(len(p) for p in parts) - 0.3 * SR * max(0, len(parts) - 1) < need and len(parts) < 40:
        k = pool.pick(rng, ok=(lambda p, c=cls: noise_rows[p]["subtype"] == c) if (same_class and cls) else
                      (lambda p: True))
        if k is None:
            k = pool.pick(rng)
        cls = cls or noise_rows[k]["subtype"]
        x = _trim_quiet_edges(mat.audio(k))
        parts.append(x)
        srcs.append(k)
    y = _xfade_concat(parts, 0.3)
    if len(y) < need:
        y = np.concatenate([y, np.zeros(need - len(y), np.float32)])
    return y[:need], srcs, cls


def plan_timeline(spec: Cast, rng: np.random.Generator, mat: Material
                   ) -> tuple[Mix, list[dict[str, Any]], list[dict[str, Any]], int]:
    """Cast, dialogue blocks and interludes of one timeline: ``(mix, cast, blocks, total_samples)``."""
    mix = Mix()
    # --- cast: least used first, then the speaker with most speech (solo/duo timelines need it)
    cast: list[dict[str, Any]] = []
    for g, corpus in spec:
        gg = GENDER_WORDS[g]
        pool = mat.speakers[corpus]
        cand = [s for s in pool if pool[s]["gender"] == gg and s not in [c["id"] for c in cast]]
        if not cand:
            raise InputError(f"the data have no further dev {gg} speaker of {corpus} for the cast "
                             f"{'+'.join(f'{a}:{b}' for a, b in spec)}")
        used = mat.speaker_use
        cand.sort(key=lambda s: (used[s], -mat.supply(s), s))
        s = cand[0]
        used[s] += 1
        cast.append(dict(id=s, gender=gg, language=pool[s]["language"],
                         level_db=round(float(rng.uniform(-26, -20)), 2)))
    units = {c["id"]: list(mat.units(c["id"])) for c in cast}
    for c in cast:                 # least-used units first (a source's few speakers recur across timelines)
        units[c["id"]].sort(key=lambda u: (mat.unit_use[u[1][0]], u[1][0]))
    supply = sum(sum(len(u[0]) for u in units[c["id"]]) for c in cast) / SR
    supply = min(supply, 130.0)
    target = float(np.clip(supply / rng.uniform(0.5, 0.7), MIN_DURATION_S, MAX_DURATION_S))
    mean_speech = float(np.mean([c["level_db"] for c in cast]))
    p_bed = rng.dirichlet([2, 2, 1.5])            # none / music / noise, varies per timeline
    t = 0
    blocks: list[dict[str, Any]] = []

    def interlude(kind: str, t: int) -> int:
        if kind == "song":
            L = float(rng.uniform(6, 25))
            lvl = float(rng.uniform(-24, -16))
            x, srcs = _excerpt(rng, mat, mat.stretch_pool, mat.stretch_tracks, L, level_db=lvl)
            x, g = _set_level(_fade(x, rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.5)), lvl)
            mix.add("song", t, x, role="song_stretch", clips=srcs, gain_db=round(g, 2), level_dbfs=round(lvl, 2))
        elif kind == "noise":
            L = float(rng.uniform(3, 12))
            lvl = float(rng.uniform(-32, -20))
            x, srcs, _ = _noise_excerpt(rng, mat, L, same_class=rng.random() < 0.6)
            x, g = _set_level(_fade(x, 0.05, 0.2), lvl)
            mix.add("noise", t, x, role="noise_stretch", clips=srcs, gain_db=round(g, 2), level_dbfs=round(lvl, 2))
        else:
            L = float(rng.uniform(1, 4))
        blocks.append(dict(kind=kind, start_s=round(t / SR, 3), dur_s=round(_q(L) / SR, 3)))
        return t + _q(L)

    first = rng.choice(["song", "noise", "silence", "none"], p=[0.4, 0.2, 0.2, 0.2])
    if first != "none":
        t = interlude(first, t)
    last_inter = first
    exhausted = False
    while t / SR < target - 8 and not exhausted:
        # --- dialogue block
        d_blk = float(rng.uniform(12, 40))
        bed = rng.choice(["none", "music", "noise"], p=p_bed)
        block_start = t
        cursor = block_start + _q(rng.uniform(0.8, 2.5) if bed != "none" else rng.uniform(0.2, 0.6))
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
            mat.unit_use[srcs[0]] += 1
            x, g = _set_level(audio, nxt["level_db"] + float(rng.normal(0, 1.0))
                              - (_active_rms_db(audio) - _rms_db(audio)))
            if prev_end is None:
                start = cursor
            elif (cur is not nxt and rng.random() < 0.18 and prev_len > 1.3 * SR and len(x) > 1.3 * SR
                  and (prev_end - earlier_end) > 0.8 * SR):
                ov = rng.uniform(0.2, min(0.9, (prev_len / SR) - 0.4, (len(x) / SR) - 0.4,
                                          (prev_end - earlier_end) / SR - 0.4))
                start = prev_end - _q(ov)
            else:
                gap = rng.uniform(0.15, 1.0) if cur is not nxt else rng.uniform(0.35, 1.2)
                start = prev_end + _q(gap)
            mix.add("voice", start, x, role="utterance", speaker=nxt["id"], gender=nxt["gender"],
                    clips=srcs, gain_db=round(g, 2), _extra=(nxt["id"], nxt["gender"]))
            earlier_end = prev_end if prev_end is not None else 0
            prev_end, prev_len, cur = start + len(x), len(x), nxt
            cursor = prev_end
            n_turns += 1
        if n_turns == 0:
            break
        block_end = prev_end + (_q(rng.uniform(0.8, 2.5)) if bed != "none" else 0)
        info = dict(kind="dialogue", start_s=round(block_start / SR, 3),
                    dur_s=round((block_end - block_start) / SR, 3), turns=n_turns, bed=str(bed))
        if bed != "none":
            snr = float(rng.uniform(0, 15))
            lvl = mean_speech - snr
            L = (block_end - block_start) / SR
            if bed == "music":
                x, srcs = _excerpt(rng, mat, mat.bed_pool, mat.bed_tracks, L, level_db=lvl)
                kind = "song"
            else:
                x, srcs, _ = _noise_excerpt(rng, mat, L)
                kind = "noise"
            x, g = _set_level(_fade(x, rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.5)), lvl)
            mix.add(kind, block_start, x, role=f"bed_{bed}", clips=srcs, gain_db=round(g, 2),
                    level_dbfs=round(lvl, 2), below_speech_db=round(snr, 2))
            info["bed_below_speech_db"] = round(snr, 2)
        blocks.append(info)
        t = block_end
        # --- interlude
        if t / SR < target - 8 and not exhausted:
            kinds = [k for k in ("song", "noise", "silence") if k != last_inter]
            p = np.array([{"song": 0.45, "noise": 0.3, "silence": 0.25}[k] for k in kinds])
            last_inter = str(rng.choice(kinds, p=p / p.sum()))
            t = interlude(last_inter, t)
    # every timeline lasts at least MIN_DURATION_S: finish with music/noise/silence
    while t / SR < MIN_DURATION_S:
        kinds = [k for k in ("song", "noise", "silence") if k != last_inter]
        last_inter = str(rng.choice(kinds))
        t = interlude(last_inter, t)
    if rng.random() < 0.5 and t / SR < MAX_DURATION_S - 4:
        t = interlude("song" if last_inter != "song" else "silence", t)
    return mix, cast, blocks, t


def render_mix(mix: Mix, total: int, rng: np.random.Generator, mat: Material) -> tuple[dict[str, np.ndarray], float]:
    """The components (voice, song, noise, room tone; each shape (total,)) summed into place, scaled together so
    that the mix peaks at 0.95 at most; returns them and the scale."""
    n = total
    comp = {k: np.zeros(n, np.float32) for k in ("voice", "song", "noise", "room")}
    for kind in ("voice", "song", "noise"):
        for item in getattr(mix, kind):
            s, x = item[0], item[1]
            e = min(n, s + len(x))
            comp[kind][s:e] += x[: e - s]
    # room tone: a quiet dev "silence" clip looped under everything, so silences are real low-level recordings
    key = mat.room_pool.pick(rng)
    if key is not None:
        x = mat.audio(key)
        lvl = _rms_db(x)
        if lvl > -120:
            reps = _xfade_concat([x] * (n // max(1, len(x) - 800) + 2), 0.05)[:n]
            target = min(lvl, float(rng.uniform(-72, -62)))
            comp["room"], g = _set_level(reps, target)
            mix.recipe.append(dict(role="room_tone", start_s=0.0, dur_s=round(n / SR, 3), clips=[key],
                                   gain_db=round(g, 2), level_dbfs=round(target, 2)))
    y = sum(comp.values())
    peak = float(np.max(np.abs(y)))
    scale = 0.95 / peak if peak > 0.95 else 1.0
    for k in comp:
        comp[k] *= scale
    return comp, scale


def reference_rows(mix: Mix, comp: Mapping[str, np.ndarray], n: int) -> list[tuple[float, float, str, str, str]]:
    """The reference rows ``(start_s, end_s, label, gender, speaker)``, a partition of the timeline, from the
    components: voice where an utterance lies, else song / noise at or above the floor, else silence."""
    nf = n // HOP
    speakers: list[list[tuple[str, str]]] = [[] for _ in range(nf)]
    for item in sorted(mix.voice, key=lambda it: it[0]):
        s, x, spk, g = item
        for f in range(s // HOP, min(nf, (s + len(x)) // HOP)):
            speakers[f].append((spk, g))
    song_db = _windowed_db(comp["song"], nf)
    noise_db = _windowed_db(comp["noise"], nf)
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
    runs: list[list] = []
    for f, lb in enumerate(lab):
        if runs and runs[-1][2] == lb:
            runs[-1][1] = f + 1
        else:
            runs.append([f, f + 1, lb])
    # merge short non-voice runs that sit between non-voice runs (no 10 ms song/noise flicker)
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
    return [(a * HOP / SR, b * HOP / SR) + tuple(lb) for a, b, lb in runs]
