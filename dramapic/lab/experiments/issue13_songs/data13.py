"""Stage-1 material for issue 13: source-tagged training mixes (voice + vocal music), the song check and the
cross-corpus timelines. Moves to ``dramapic/lab/stage1_data.py``.

Every timeline is built with the product's own mix builder (:func:`dramapic.train.build_training_mix`) so that the
labelling rule and augmentation are those of the shipped training; what is new:

* each mix draws its voice from ONE voice source and its music from ONE music source (``VOICE_GROUPS`` /
  ``MUSIC_GROUPS``), recorded in ``recipe["voice_group"] / ["music_group"]``, so that a model can be refitted
  "without source S" by dropping the mixes that hold S (the cross-corpus protocol, also usable by stage 2);
* the music pool adds ``manifest_extra_music.csv`` (train part; the a cappella CSD fixture and the operatic voice
  are held out as song-check material) and the voice pool adds ``manifest_extra.csv`` (Common Voice, RAVDESS, nEMO);
* music excerpts are augmented (varispeed pitch/tempo shift, EQ tilt / band emphasis, a cappella stems over
  instrumental beds) -- in song stretches and in beds under speech alike, so sung-over dialogue stays voice.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dramapic import train as T

DATA = Path("/work/shared/data")
MANIFESTS = ("manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv")
SR = 16000

#: voice source -> group (held out together)
VOICE_GROUPS = {"librispeech-train-clean-100": "librispeech", "emodb": "emodb", "fsdd": "fsdd",
                "klettres-data": "klettres", "pyaudioanalysis": "radio_misc", "cv": "cv", "ravdess": "ravdess",
                "nemo": "nemo"}
#: music source -> group
MUSIC_GROUPS = {"wesnoth-1.16-music": "wesnoth", "fretsonfire-songs-sectoid": "fretsonfire",
                "fretsonfire-songs-muldjord": "fretsonfire", "usdx_songs": "usdx", "digabi_muzak": "digabi",
                "debian_singularity_music": "singularity", "everythingisfree": "everythingisfree",
                "oga_lofi_clue_cards": "oga_lofi", "sonic-pi-samples": "misc_music", "moviepy-media": "misc_music",
                "pyaudioanalysis": "misc_music", "urbansound8k-fold1": "misc_music",
                "urbansound8k-fold2": "misc_music", "urbansound8k-fold3": "misc_music",
                "agb_josh_woodward": "misc_music"}
#: a cappella / sung stems used only as overlays (too little to be a mix's music source)
STEM_SOURCES = ("vocadito_mirdata_fixture",)
#: train-split sources kept out of training: the only a cappella / operatic material, used by the song check
SONGCHECK_HELDOUT_SOURCES = ("csd_drmeter_fixture", "openair_operatic_voice")


def read_rows() -> list[dict[str, str]]:
    rows = []
    for name in MANIFESTS:
        with open(DATA / name, newline="", encoding="utf-8") as handle:
            for r in csv.DictReader(handle):
                r["manifest"] = name
                rows.append(r)
    return rows


_ORIG_LOAD = T._load


def _load_any(path):
    """``T._load`` (soundfile), falling back to ffmpeg for the few Opus files libsndfile calls malformed."""
    try:
        return _ORIG_LOAD(path)
    except Exception:
        from dramapic import media

        return media.decode_audio(media.probe(Path(path))).astype(np.float32)


T._load = _load_any


class _View:
    """A material restricted to some rows; shares folds and the decode cache with its base."""

    select = T._Material.select

    def __init__(self, base: T._Material, rows: list[dict[str, str]]) -> None:
        self.root, self.rows, self.fold, self.group, self._base = base.root, rows, base.fold, base.group, base

    def audio(self, rel: str) -> np.ndarray:
        return self._base.audio(rel)


def material(rows: list[dict[str, str]], *, n_folds: int, seed: int) -> T._Material:
    """``T._Material`` whose fold unit is the speaker (voice), the original recording (manifest.csv music / noise)
    or the track id (extra music, whose ``speaker`` column holds it)."""
    mat = T._Material(rows, DATA, n_folds=n_folds, seed=seed)
    origins = {r["path"]: r["origin"] for r in T._read_manifest(DATA / "clips_origin.csv")}
    group = {}
    for r in mat.rows:
        if r["manifest"] == "manifest_extra_music.csv":
            group[r["path"]] = "trk:" + r["speaker"]
        else:
            group[r["path"]] = T._source_group(r, origins.get(r["path"]))
    names = sorted(set(group.values()))
    order = np.random.default_rng([seed, 7]).permutation(len(names))
    fold_of = {names[i]: k % n_folds for k, i in enumerate(order)}
    mat.group = group
    mat.fold = {p: fold_of[g] for p, g in group.items()}
    return mat


# ----------------------------------------------------------------------------------- music augmentation
_ORIG_MUSIC_EXCERPT = T._music_excerpt


def eq(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random EQ: a first-order tilt (+-6 dB across the band) plus, with p=0.5, a +-8 dB band around 300-3000 Hz."""
    from scipy.signal import butter, sosfilt

    y = x.astype(np.float64)
    tilt = float(rng.uniform(-1, 1))
    sos = butter(1, 1000, btype="highpass" if tilt > 0 else "lowpass", fs=SR, output="sos")
    y = y + abs(tilt) * sosfilt(sos, y)
    if rng.random() < 0.5:
        f0 = float(np.exp(rng.uniform(np.log(300), np.log(3000))))
        sos = butter(2, [f0 / 1.5, min(f0 * 1.5, 7900)], btype="bandpass", fs=SR, output="sos")
        y = y + (10 ** (rng.uniform(-8, 8) / 20) - 1) * sosfilt(sos, y)
    return y.astype(np.float32)


def varispeed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch and tempo together, like ffmpeg ``asetrate``)."""
    from scipy.signal import resample

    n = max(1, int(round(len(x) / factor)))
    return resample(x.astype(np.float64), n).astype(np.float32)


@dataclass
class MusicAug:
    """What the patched music excerpt does: p_speed varispeed in +-3 semitones, p_eq EQ, p_stem an a cappella stem
    over the excerpt (0-8 dB above it)."""

    p_speed: float = 0.35
    p_eq: float = 0.35
    p_stem: float = 0.12
    stems: list | None = None  # list of arrays


AUG = MusicAug()


def _augmented_music_excerpt(rng, mat, tracks, seconds, level_db):
    factor = 2 ** (float(rng.uniform(-3, 3)) / 12) if rng.random() < AUG.p_speed else 1.0
    x = _ORIG_MUSIC_EXCERPT(rng, mat, tracks, seconds * factor + 0.05, level_db)
    need = int(seconds * SR) // T.FRAME * T.FRAME
    if factor != 1.0:
        x = varispeed(x, factor)
    x = np.pad(x[:need], (0, max(0, need - len(x))))
    if rng.random() < AUG.p_eq:
        x = eq(x, rng)
    if AUG.stems and rng.random() < AUG.p_stem:
        stem = AUG.stems[int(rng.integers(len(AUG.stems)))]
        reps = np.tile(stem, need // max(1, len(stem)) + 1)
        off = int(rng.integers(0, max(1, len(stem))))
        s = reps[off:off + need]
        s = np.pad(s, (0, need - len(s)))
        gain = T._rms(x) * 10 ** (rng.uniform(0, 8) / 20) / max(T._rms(s), 1e-9)
        x = x + s * gain
    return x


# ----------------------------------------------------------------------------------- training mixes
def _speakers(mat, rows, rng, max_clips=None):
    speakers: dict[str, list] = {}
    if max_clips is not None and len(rows) > max_clips:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), size=max_clips, replace=False))]
    for r in rows:
        key = r["speaker"] or r["path"]
        for unit in T.speech_units(mat.audio(r["path"]), rng):
            speakers.setdefault(key, []).append((unit, r["gender"] if r["gender"] in ("female", "male") else ""))
    for key in speakers:
        order = rng.permutation(len(speakers[key]))
        speakers[key] = [speakers[key][i] for i in order]
    return speakers


def build_training_mixes(*, seed: int = 0, n_folds: int = 2, seconds_per_fold: float = 3600.0,
                         mix_s: tuple[float, float] = (45.0, 120.0), max_voice_clips: int = 700,
                         log=print, sink=None, only_folds=None) -> list[T.TrainingMix]:
    """Source-tagged stage-1 training mixes from train-split rows of the three manifests.

    Each mix: one voice group and one music group (drawn with probability proportional to sqrt(train seconds) so
    that small sources appear but do not dominate), noise and room tone from the whole fold.
    ``max_voice_clips`` caps the clips decoded per voice group and fold (Common Voice alone has 1,946).
    """
    rows = [r for r in read_rows() if r["split"] == "train" and r["source"] not in SONGCHECK_HELDOUT_SOURCES]
    mat = material(rows, n_folds=n_folds, seed=seed)
    stems_rows = [r for r in mat.rows if r["source"] in STEM_SOURCES]
    mixes = []
    T._music_excerpt = _augmented_music_excerpt
    try:
        for fold in range(n_folds):
            if only_folds is not None and fold not in only_folds:  # folds are seeded apart: build them in parallel
                continue
            rng = np.random.default_rng([seed, 11, fold])
            AUG.stems = [mat.audio(r["path"]) for r in stems_rows]
            vrows = [r for r in mat.select(fold, "voice")]
            vgroups = sorted({VOICE_GROUPS[r["source"]] for r in vrows})
            speakers = {g: _speakers(mat, [r for r in vrows if VOICE_GROUPS[r["source"]] == g], rng,
                                     max_voice_clips) for g in vgroups}
            srows = [r for r in mat.select(fold, "song") if r["source"] not in STEM_SOURCES]
            mgroups = sorted({MUSIC_GROUPS[r["source"]] for r in srows})
            vsec = np.array([sum(float(r["duration_s"]) for r in vrows if VOICE_GROUPS[r["source"]] == g)
                             for g in vgroups])
            msec = np.array([sum(float(r["duration_s"]) for r in srows if MUSIC_GROUPS[r["source"]] == g)
                             for g in mgroups])
            pv, pm = np.sqrt(vsec) / np.sqrt(vsec).sum(), np.sqrt(msec) / np.sqrt(msec).sum()
            others = [r for r in mat.rows if r["label"] in ("noise", "silence")]
            done, k = 0.0, 0
            while done < seconds_per_fold:
                vg = vgroups[int(rng.choice(len(vgroups), p=pv))]
                mg = mgroups[int(rng.choice(len(mgroups), p=pm))]
                view = _View(mat, others + [r for r in srows if MUSIC_GROUPS[r["source"]] == mg])
                mix = T.build_training_mix(f"mix13_f{fold}_{k:03d}", fold, view,
                                           np.random.default_rng([seed, 13, fold, k]), speakers=speakers[vg],
                                           target_s=float(rng.uniform(*mix_s)), augment=True)
                mix.recipe.update(voice_group=vg, music_group=mg)
                done += len(mix.audio) / SR
                if sink is not None:  # hand each mix on at once (features are cached as the mixes come)
                    sink(mix)
                    mix = T.TrainingMix(mix.name, mix.fold, mix.audio[:0], mix.labels, mix.genders, mix.recipe)
                mixes.append(mix)
                k += 1
            log(f"fold {fold}: {k} mixes, {done:.0f} s")
    finally:
        T._music_excerpt = _ORIG_MUSIC_EXCERPT
    return mixes


# ----------------------------------------------------------------------------------- evaluation timelines
def crosscorpus_timelines(*, seed: int = 20261201, seconds: float = 150.0, n_per_source: int = 1,
                          log=print) -> list[T.TrainingMix]:
    """Dev-split timelines made only from one held-out voice or music source each (the other components from the
    dev split of every other source), by the training mixes' builder without music augmentation.

    * voice source V: dialogue of V's dev speakers, beds and interludes from all dev music / noise;
    * music source M: song stretches and beds from M's dev tracks only, dialogue of all dev speakers.
    ``recipe["heldout"]`` names ``voice:V`` / ``music:M``.
    """
    rows = [r for r in read_rows() if r["split"] == "dev"]
    for r in rows:
        r["split"] = "train"  # _Material keeps "train" rows; these are dev rows used for measuring only
    mat = material(rows, n_folds=1, seed=seed)
    out = []
    voice_all = mat.select(0, "voice")
    song_all = mat.select(0, "song")
    others = [r for r in mat.rows if r["label"] in ("noise", "silence")]
    rng = np.random.default_rng([seed, 1])
    all_speakers = _speakers(mat, voice_all, rng, 400)
    for kind, groups in (("voice", VOICE_GROUPS), ("music", MUSIC_GROUPS)):
        for g in sorted(set(groups.values())):
            if kind == "voice":
                vr = [r for r in voice_all if groups.get(r["source"]) == g]
                if not vr:
                    continue
                speakers = _speakers(mat, vr, np.random.default_rng([seed, 2, len(out)]))
                view = _View(mat, others + song_all)
            else:
                sr = [r for r in song_all if groups.get(r["source"]) == g]
                if not sr:
                    continue
                speakers = all_speakers
                view = _View(mat, others + sr)
            for k in range(n_per_source):
                mix = T.build_training_mix(f"xc_{kind}_{g}_{k}", 0, view, np.random.default_rng([seed, 3, hash(g) % 997, k]),
                                           speakers=speakers, target_s=seconds, augment=True)
                mix.recipe["heldout"] = f"{kind}:{g}"
                out.append(mix)
            log(f"{kind}:{g} done")
    return out


@dataclass(frozen=True)
class SongClip:
    name: str
    path: Path
    subtype: str
    source: str
    track: str


def songcheck_clips() -> list[SongClip]:
    """Song-only material never fitted: the dev part of the extra music, the fretsonfire dev songs (full mixes and
    guitar stems), the dev Wesnoth orchestral tracks, and the held-out train-split a cappella / operatic fixtures
    (:data:`SONGCHECK_HELDOUT_SOURCES`, excluded from every fit here)."""
    out, seen = [], set()
    for r in read_rows():
        keep = (r["manifest"] == "manifest_extra_music.csv" and r["split"] == "dev") \
            or (r["source"] in SONGCHECK_HELDOUT_SOURCES) \
            or (r["split"] == "dev" and r["source"].startswith("fretsonfire") and r["subtype"] == "rock_song") \
            or (r["split"] == "dev" and r["source"] == "wesnoth-1.16-music")
        if keep and r["label"] == "song":
            if r["source"] == "wesnoth-1.16-music":
                # one excerpt per dev track is enough for an instrumental control (CPU is shared)
                if Path(r["path"]).parent.name in seen:
                    continue
                seen.add(Path(r["path"]).parent.name)
            out.append(SongClip(name=Path(r["path"]).stem, path=DATA / r["path"], subtype=r["subtype"],
                                source=r["source"], track=r["speaker"]))
    return out
