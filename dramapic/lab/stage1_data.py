"""Source-tagged stage-1 training mixes for the song-safe stage 1 (issue 13; ``dramapic train --only song-safe``).

Ported from the measurement script ``experiments/issue13_songs/data13.py`` onto :mod:`dramapic.lab.mixes`: every
timeline is built by :func:`dramapic.lab.mixes.build_training_mix`, so the labelling rule and the mix augmentation
are those of the default stage-1 training. What is added:

* the material is the ``train`` rows of ``manifest.csv`` plus, when they lie next to it, ``manifest_extra.csv``
  (Common Voice, RAVDESS, nEMO) and ``manifest_extra_music.csv`` (vocal pop, folk, lo-fi, electronic, piano); the
  song check's material (:data:`dramapic.lab.songcheck.HELDOUT_SOURCES`) is never read;
* each mix draws its dialogue from ONE voice group and its music from ONE music group (:data:`VOICE_GROUPS`,
  :data:`MUSIC_GROUPS`), recorded in ``recipe["voice_group"]`` / ``recipe["music_group"]``, so a model can be refitted
  "without source S" by dropping the mixes that hold S (the cross-corpus protocol); ``recipe["sources"]`` lists the
  source of every clip whose audio entered the mix;
* music excerpts, in song stretches and in beds under speech alike, are augmented (:class:`MusicAugmentation`:
  varispeed pitch / tempo shift, EQ tilt and band emphasis, a cappella stems over the excerpt), so that singing over
  a band stays ``song`` and sung-over dialogue stays ``voice``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..progress import ProgressHook, silent_hook
from ..result import FRAME_SAMPLES, GENDERS, SAMPLE_RATE
from . import mixes
from .data import DATA_MANIFESTS, _rms, load_audio, manifests_beside, read_manifest
from .mixes import TrainingMix, _Material, _source_group, build_training_mix, speech_units
from .songcheck import HELDOUT_SOURCES

#: voice source -> group (a group is held out as a whole by the cross-corpus protocol); unlisted sources are their
#: own group
VOICE_GROUPS: dict[str, str] = {
    "librispeech-train-clean-100": "librispeech", "emodb": "emodb", "fsdd": "fsdd", "klettres-data": "klettres",
    "pyaudioanalysis": "radio_misc", "cv": "cv", "ravdess": "ravdess", "nemo": "nemo"}
#: music source -> group; the small odds and ends share ``misc_music``; unlisted sources are their own group
MUSIC_GROUPS: dict[str, str] = {
    "wesnoth-1.16-music": "wesnoth", "fretsonfire-songs-sectoid": "fretsonfire",
    "fretsonfire-songs-muldjord": "fretsonfire", "usdx_songs": "usdx", "digabi_muzak": "digabi",
    "debian_singularity_music": "singularity", "everythingisfree": "everythingisfree",
    "oga_lofi_clue_cards": "oga_lofi", "sonic-pi-samples": "misc_music", "moviepy-media": "misc_music",
    "pyaudioanalysis": "misc_music", "urbansound8k-fold1": "misc_music", "urbansound8k-fold2": "misc_music",
    "urbansound8k-fold3": "misc_music", "agb_josh_woodward": "misc_music"}
#: a cappella stems: too little to be a mix's music source, laid over other excerpts (in both folds: two clips)
STEM_SOURCES: tuple[str, ...] = ("vocadito_mirdata_fixture",)
#: the extra manifests read when they lie next to ``manifest.csv``
EXTRA_MANIFESTS: tuple[str, ...] = tuple(m for m in DATA_MANIFESTS if m != "manifest.csv")
MUSIC_MANIFEST = "manifest_extra_music.csv"


def voice_group(source: str) -> str:
    """The voice group of a manifest ``source``."""
    return VOICE_GROUPS.get(source, source)


def music_group(source: str) -> str:
    """The music group of a manifest ``source``."""
    return MUSIC_GROUPS.get(source, source)


@dataclass(frozen=True)
class MusicAugmentation:
    """What happens to every music excerpt of a source-tagged mix (the probabilities of the shipped song-safe files).

    Attributes
    ----------
    p_speed : float
        Probability of a varispeed shift (pitch and tempo together) ...
    max_semitones : float
        ... of up to this many semitones either way.
    p_eq : float
        Probability of a random EQ (:func:`random_eq`).
    p_stem : float
        Probability of an a cappella stem (:data:`STEM_SOURCES`) over the excerpt ...
    stem_db : tuple of float
        ... this many dB (uniform) above the excerpt's RMS.
    """

    p_speed: float = 0.35
    max_semitones: float = 3.0
    p_eq: float = 0.35
    p_stem: float = 0.12
    stem_db: tuple[float, float] = (0.0, 8.0)

    def describe(self) -> str:
        return (f"music excerpts (song stretches and beds): p={self.p_speed} varispeed +-{self.max_semitones:g} "
                f"semitones, p={self.p_eq} EQ (first-order tilt +-6 dB, p=0.5 a +-8 dB band at 300-3000 Hz), "
                f"p={self.p_stem} a cappella stem ({', '.join(STEM_SOURCES)}) {self.stem_db[0]:g}-{self.stem_db[1]:g} "
                f"dB above the excerpt")


#: the augmentation of the shipped song-safe files
MUSIC_AUGMENTATION = MusicAugmentation()


# ------------------------------------------------------------------------------------------------ rows and material
def read_rows(manifest_csv: Path) -> list[dict[str, str]]:
    """Rows of ``manifest.csv`` and of the extra manifests next to it (when present), each with a ``manifest`` key.

    Raises
    ------
    InputError
        ``manifest_csv`` (or an extra manifest that exists) is missing, unreadable, or lacks the columns used here.
    """
    manifest_csv = Path(manifest_csv)
    paths = manifests_beside(manifest_csv, EXTRA_MANIFESTS)
    rows = []
    for path in paths:
        for r in read_manifest(path):
            missing = {"label", "source", "split", "speaker", "subtype", "gender", "duration_s"} - set(r)
            if missing:
                raise InputError(f"{path} lacks the column(s) {sorted(missing)}")
            rows.append({**r, "manifest": path.name})
    return rows


def training_rows(rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The ``train`` rows a song-safe fit may use: the song check's held-out sources removed."""
    return [r for r in rows if r["split"] == "train" and r["source"] not in HELDOUT_SOURCES]


class SourceMaterial(_Material):
    """:class:`~dramapic.lab.mixes._Material` over several manifests.

    The fold unit is the speaker (voice), the original recording (``manifest.csv`` music and noise) or the track
    (extra music: its ``speaker`` column holds the track id, and a track's parts must not cross folds).
    """

    def __init__(self, rows: list[dict[str, str]], root: Path, *, n_folds: int, seed: int) -> None:
        super().__init__(rows, root, n_folds=n_folds, seed=seed)
        origin_csv = Path(root) / "clips_origin.csv"
        origins = {r["path"]: r["origin"] for r in read_manifest(origin_csv)} if origin_csv.is_file() else {}
        self.group = {r["path"]: ("trk:" + r["speaker"]) if r.get("manifest") == MUSIC_MANIFEST and r["speaker"]
                      else _source_group(r, origins.get(r["path"])) for r in self.rows}
        names = sorted(set(self.group.values()))
        order = np.random.default_rng([seed, 7]).permutation(len(names))
        fold_of = {names[i]: k % n_folds for k, i in enumerate(order)}
        self.fold = {path: fold_of[g] for path, g in self.group.items()}

    def audio(self, rel: str) -> np.ndarray:
        if rel not in self._cache:
            self._cache[rel] = load_audio(self.root / rel)
        return self._cache[rel]


class _View:
    """The material restricted to some rows (one music group plus the noise and room tone), sharing folds and the
    decode cache with its base; records the source of every clip whose audio it hands out."""

    select = _Material.select

    def __init__(self, base: SourceMaterial, rows: list[dict[str, str]]) -> None:
        self.root, self.rows, self.fold, self.group, self._base = base.root, rows, base.fold, base.group, base
        self._heard = {r["path"]: (r["label"], r["source"]) for r in rows}
        self.used: set[tuple[str, str]] = set()  # (label, source)

    def audio(self, rel: str) -> np.ndarray:
        self.used.add(self._heard[rel])
        return self._base.audio(rel)


# ------------------------------------------------------------------------------------------------ music augmentation
def random_eq(x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """A random EQ: a first-order tilt (up to +-6 dB across the band) and, with p=0.5, a +-8 dB band (an octave and
    a bit wide) centred at 300-3000 Hz (log-uniform).

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    rng : np.random.Generator
        Draws the tilt, whether there is a band, its centre and gain.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    from scipy.signal import butter, sosfilt

    y = x.astype(np.float64)
    tilt = float(rng.uniform(-1, 1))
    sos = butter(1, 1000, btype="highpass" if tilt > 0 else "lowpass", fs=SAMPLE_RATE, output="sos")
    y = y + abs(tilt) * sosfilt(sos, y)
    if rng.random() < 0.5:
        f0 = float(np.exp(rng.uniform(np.log(300), np.log(3000))))
        sos = butter(2, [f0 / 1.5, min(f0 * 1.5, 7900)], btype="bandpass", fs=SAMPLE_RATE, output="sos")
        y = y + (10 ** (rng.uniform(-8, 8) / 20) - 1) * sosfilt(sos, y)
    return y.astype(np.float32)


def varispeed(x: np.ndarray, *, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster, pitch and tempo together (like ffmpeg ``asetrate``).

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    factor : float
        Speed factor (above 1: faster and higher).

    Returns
    -------
    np.ndarray, shape (round(n_samples / factor),), float32
    """
    from scipy.signal import resample

    n = max(1, int(round(len(x) / factor)))
    return resample(x.astype(np.float64), n).astype(np.float32)


def _augmented_music(aug: MusicAugmentation, stems: Sequence[np.ndarray], log: dict[str, Any]):
    """A ``music_excerpt`` for :func:`~dramapic.lab.mixes.build_training_mix` that varispeeds, equalises and lays
    a cappella stems over the plain excerpts; what it did is counted in ``log``."""
    original = mixes._music_excerpt

    def excerpt(rng: np.random.Generator, mat: Any, tracks: list[list[str]], seconds: float,
                level_db: float) -> np.ndarray:
        # the draws and their order are those of the experiment (data13), so the same seed gives the same mixes
        factor = 2 ** (float(rng.uniform(-aug.max_semitones, aug.max_semitones)) / 12) \
            if rng.random() < aug.p_speed else 1.0
        x = original(rng, mat, tracks, seconds * factor + 0.05, level_db)
        need = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
        if factor != 1.0:
            x = varispeed(x, factor=factor)
            log["varispeed"] = log.get("varispeed", 0) + 1
        x = np.pad(x[:need], (0, max(0, need - len(x))))
        if rng.random() < aug.p_eq:
            x = random_eq(x, rng=rng)
            log["eq"] = log.get("eq", 0) + 1
        if stems and rng.random() < aug.p_stem:
            stem = stems[int(rng.integers(len(stems)))]
            reps = np.tile(stem, need // max(1, len(stem)) + 1)
            off = int(rng.integers(0, max(1, len(stem))))
            s = reps[off:off + need]
            s = np.pad(s, (0, need - len(s)))
            gain = _rms(x) * 10 ** (rng.uniform(*aug.stem_db) / 20) / max(_rms(s), 1e-9)
            x = x + s * gain
            log["stem"] = log.get("stem", 0) + 1
        return x

    return excerpt


# ------------------------------------------------------------------------------------------------ training mixes
def _speaker_pool(mat: SourceMaterial, rows: list[dict[str, str]], rng: np.random.Generator,
                  max_clips: int | None) -> tuple[dict[str, list[tuple[np.ndarray, str]]], dict[str, str]]:
    """Turn units per speaker, shuffled (as :func:`dramapic.lab.mixes.build_training_mixes` builds them), and each
    speaker's source."""
    if max_clips is not None and len(rows) > max_clips:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), size=max_clips, replace=False))]
    pool: dict[str, list[tuple[np.ndarray, str]]] = {}
    source: dict[str, str] = {}
    for r in rows:
        key = r["speaker"] or r["path"]
        source[key] = r["source"]
        for unit in speech_units(mat.audio(r["path"]), rng):
            pool.setdefault(key, []).append((unit, r["gender"] if r["gender"] in GENDERS else ""))
    for key in pool:
        order = rng.permutation(len(pool[key]))
        pool[key] = [pool[key][i] for i in order]
    return pool, source


def _sqrt_weights(seconds: np.ndarray) -> np.ndarray:
    # sqrt of the train seconds: small sources appear, big ones (Common Voice, Wesnoth) do not dominate
    w = np.sqrt(seconds)
    return w / w.sum()


def build_source_tagged_mixes(manifest_csv: Path, *, seed: int = 0, n_folds: int = 2,
                              seconds_per_fold: float = 3600.0, mix_s: tuple[float, float] = (45.0, 120.0),
                              max_voice_clips: int | None = 700, mixes_per_fold: Sequence[int] | None = None,
                              augmentation: MusicAugmentation | None = None,
                              progress: ProgressHook = silent_hook) -> list[TrainingMix]:
    """Source-tagged stage-1 training mixes from the ``train`` rows of ``manifest_csv`` and its extra manifests.

    Per fold (material split by speaker / recording / track, :class:`SourceMaterial`), mixes are drawn until
    ``seconds_per_fold`` is reached: a voice group and a music group (each with probability proportional to the
    square root of its train seconds in the fold), then one :func:`~dramapic.lab.mixes.build_training_mix` timeline
    whose dialogue comes from that voice group only and whose song stretches and music beds come from that music
    group only, augmented by ``augmentation``; noise and room tone come from the whole fold.

    Parameters
    ----------
    manifest_csv : Path
        ``manifest.csv``; ``manifest_extra.csv`` and ``manifest_extra_music.csv`` are read when they lie next to it.
    seed : int
        Seeds the folds, the draws and every mix.
    n_folds : int
        Folds of the material, disjoint in speaker / recording / track.
    seconds_per_fold : float
        Mix audio per fold (the full recipe: 3,600 s).
    mix_s : tuple of float
        Range of a mix's target length, seconds.
    max_voice_clips : int, optional
        At most this many clips per voice group and fold are cut into turns (Common Voice alone has 1,946).
    mixes_per_fold : sequence of int, optional
        Exactly this many mixes per fold instead of ``seconds_per_fold``. A fold's mixes are drawn in a fixed order
        whatever the budget, so ``(64, 35)`` rebuilds the 99 mixes the shipped song-safe files were fitted on.
    augmentation : MusicAugmentation, optional
        Default :data:`MUSIC_AUGMENTATION` (the shipped files' settings).
    progress : ProgressHook

    Returns
    -------
    list of TrainingMix
        Named ``songsafe_f<fold>_<k>``; ``recipe`` adds ``voice_group``, ``music_group``, ``sources`` (label ->
        sorted sources of every clip heard in the mix, stems included) and ``music_augmentation`` (counts).

    Raises
    ------
    InputError
        A manifest is missing or unreadable, or a fold has no voice or no music clip to build from.
    ConfigError
        ``mixes_per_fold`` does not give one positive count per fold.
    """
    manifest_csv = Path(manifest_csv)
    if mixes_per_fold is not None and (len(mixes_per_fold) != n_folds or min(mixes_per_fold) < 1):
        raise ConfigError(f"mixes_per_fold must give one count >= 1 for each of the {n_folds} folds, "
                          f"got {list(mixes_per_fold)}")
    augmentation = MUSIC_AUGMENTATION if augmentation is None else augmentation
    rows = training_rows(read_rows(manifest_csv))
    mat = SourceMaterial(rows, manifest_csv.parent, n_folds=n_folds, seed=seed)
    stem_rows = [r for r in mat.rows if r["source"] in STEM_SOURCES]
    noise_rows = [r for r in mat.rows if r["label"] in ("noise", "silence")]
    out: list[TrainingMix] = []
    total = n_folds * seconds_per_fold if mixes_per_fold is None else float(sum(mixes_per_fold))
    for fold in range(n_folds):
        rng = np.random.default_rng([seed, 11, fold])
        stems = [mat.audio(r["path"]) for r in stem_rows]
        vrows = mat.select(fold, "voice")
        srows = [r for r in mat.select(fold, "song") if r["source"] not in STEM_SOURCES]
        if not vrows or not srows:
            raise InputError(f"fold {fold} of {manifest_csv} has {len(vrows)} voice and {len(srows)} song train "
                             f"clips; source-tagged mixes need both (too few speakers or tracks for {n_folds} folds?)")
        vgroups = sorted({voice_group(r["source"]) for r in vrows})
        pools = {g: _speaker_pool(mat, [r for r in vrows if voice_group(r["source"]) == g], rng, max_voice_clips)
                 for g in vgroups}
        mgroups = sorted({music_group(r["source"]) for r in srows})
        pv = _sqrt_weights(np.array([sum(float(r["duration_s"]) for r in vrows if voice_group(r["source"]) == g)
                                     for g in vgroups]))
        pm = _sqrt_weights(np.array([sum(float(r["duration_s"]) for r in srows if music_group(r["source"]) == g)
                                     for g in mgroups]))
        done, k = 0.0, 0
        while done < seconds_per_fold if mixes_per_fold is None else k < mixes_per_fold[fold]:
            vg = vgroups[int(rng.choice(len(vgroups), p=pv))]
            mg = mgroups[int(rng.choice(len(mgroups), p=pm))]
            speakers, speaker_source = pools[vg]
            if not speakers:
                raise InputError(f"voice group {vg!r} of fold {fold} has no clip with speech to cut into turns")
            view = _View(mat, noise_rows + [r for r in srows if music_group(r["source"]) == mg])
            log: dict[str, Any] = {}
            mix = build_training_mix(f"songsafe_f{fold}_{k:03d}", fold, view,
                                     np.random.default_rng([seed, 13, fold, k]), speakers=speakers,
                                     target_s=float(rng.uniform(*mix_s)), augment=True,
                                     music_excerpt=_augmented_music(augmentation, stems, log))
            heard = view.used | {("voice", speaker_source[s]) for s in mix.recipe["cast"]}
            if log.get("stem"):
                heard |= {("song", r["source"]) for r in stem_rows}
            sources = {lab: sorted({s for lb, s in heard if lb == lab})
                       for lab in ("voice", "song", "noise", "silence")}
            mix.recipe.update(voice_group=vg, music_group=mg, sources=sources, music_augmentation=log)
            out.append(mix)
            done += len(mix.audio) / SAMPLE_RATE
            k += 1
            progress("mixes", min(fold * seconds_per_fold + done, total) if mixes_per_fold is None
                     else float(sum(mixes_per_fold[:fold]) + k), total)
    return out


def training_data_info(manifest_csv: Path, built: Sequence[TrainingMix], *,
                       augmentation: MusicAugmentation) -> dict[str, Any]:
    """Provenance of source-tagged mixes for a manifest entry: manifests (sha256), held-out sources, mixes per
    group, label seconds."""
    from ..models import file_sha256
    from ..result import STAGE1_LABELS

    manifest_csv = Path(manifest_csv)
    paths = manifests_beside(manifest_csv, EXTRA_MANIFESTS)
    per_voice: dict[str, int] = {}
    per_music: dict[str, int] = {}
    for m in built:
        per_voice[m.recipe["voice_group"]] = per_voice.get(m.recipe["voice_group"], 0) + 1
        per_music[m.recipe["music_group"]] = per_music.get(m.recipe["music_group"], 0) + 1
    label_s = np.bincount(np.concatenate([m.labels for m in built]).astype(np.int64), minlength=4) * 0.01 \
        if built else np.zeros(4)
    return {
        "manifests": {p.name: file_sha256(p) for p in paths}, "split": "train",
        "held_out_train_sources": list(HELDOUT_SOURCES), "mixes": len(built),
        "seconds": round(float(sum(len(m.audio) for m in built)) / SAMPLE_RATE, 1),
        "folds": len({m.fold for m in built}),
        "mixes_per_fold": {str(f): sum(m.fold == f for m in built) for f in sorted({m.fold for m in built})},
        "label_seconds": {lab: round(float(s), 1) for lab, s in zip(STAGE1_LABELS, label_s, strict=True)},
        "per_mix_sources": "one voice group and one music group per mix (dramapic/lab/stage1_data.py)",
        "mixes_per_voice_group": dict(sorted(per_voice.items())),
        "mixes_per_music_group": dict(sorted(per_music.items())),
        "augmentation": "dramapic.lab.mixes timelines + " + augmentation.describe(),
    }
