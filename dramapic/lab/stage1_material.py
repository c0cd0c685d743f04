"""Stage 1's training material: which ``train`` rows its fits draw on, and the folds they are split into.

:func:`stage1_rows` chooses the rows (``manifest.csv``'s, the extra music's ``train`` tracks beside it, optionally the
extra voices; sources a cross-corpus fit must not hear left out); :class:`_Material` splits them into disjoint folds
by speaker, recording or track and decodes their audio on demand. :mod:`dramapic.lab.mixes` (the training mixes and
the members' clip reels) and :mod:`dramapic.lab.stage1_data` (the song-safe fit's source-tagged material) build on
it; the names are imported from :mod:`dramapic.lab.mixes` too, where they lived first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .data import load_audio, manifests_beside, read_manifest

#: the vocal-music manifest read beside ``manifest.csv`` (issue 13: the default stage 1 trains on its train part)
EXTRA_MUSIC_MANIFEST = "manifest_extra_music.csv"
#: the many-voices manifest beside ``manifest.csv`` (Common Voice, RAVDESS, nEMO): stage 1 *can* train on its train
#: voices (``extra_voices=True``); the shipped stage 1 does not -- measured across corpora on 2026-12-05 it lost about
#: a point of accuracy with them, over two training seeds (lab record ``issue14_stage1_voices``)
EXTRA_VOICE_MANIFEST = "manifest_extra.csv"
#: at most this many train speakers of each extra voice source (seeded choice, all their clips): Common Voice's
#: 1,110 would otherwise be four casts in five; 200 is about LibriSpeech's 201
EXTRA_VOICE_SPEAKERS = 200


def _some_speakers(rows: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """``rows`` of at most ``limit`` speakers per source, chosen by a fixed seed (independent of the mix seed, so
    every stage-1 fit draws the same voices)."""
    kept: set[tuple[str, str]] = set()
    for source in sorted({r["source"] for r in rows}):
        speakers = sorted({r["speaker"] for r in rows if r["source"] == source})
        if len(speakers) > limit:
            pick = np.random.default_rng([23, len(speakers)]).choice(len(speakers), size=limit, replace=False)
            speakers = [speakers[i] for i in sorted(pick)]
        kept |= {(source, s) for s in speakers}
    return [r for r in rows if (r["source"], r["speaker"]) in kept]


def stage1_rows(manifest_csv: Path, *, extra_voices: bool = False, excluded_voice_sources: Sequence[str] = (),
                excluded_music_sources: Sequence[str] = ()) -> list[dict[str, str]]:
    """The rows stage 1's training material is drawn from: ``manifest_csv``'s, then -- when they lie beside it --
    :data:`EXTRA_MUSIC_MANIFEST`'s ``train`` rows outside the song check's held-out sources
    (:data:`dramapic.lab.songcheck.HELDOUT_SOURCES`), tagged ``extra_music`` so that a track's parts stay in one fold,
    and (``extra_voices``, off for the shipped files) :data:`EXTRA_VOICE_MANIFEST`'s ``train`` voices, at most
    :data:`EXTRA_VOICE_SPEAKERS` speakers per source. By default the voices are ``manifest_csv``'s alone, so Common
    Voice, RAVDESS and nEMO remain voices stage 1 never heard, which the cross-corpus member check relies on.

    ``excluded_voice_sources`` / ``excluded_music_sources`` drop every voice / song clip of those sources (manifest
    ``source`` values; some sources hold both): the fits of the cross-corpus protocol, which score a source with a
    stage 1 that never heard it.
    """
    from .songcheck import HELDOUT_SOURCES

    excluded = {"voice": set(excluded_voice_sources), "song": set(excluded_music_sources)}

    def kept(r: dict[str, str]) -> bool:
        return r["source"] not in excluded.get(r["label"], ())

    manifest_csv, *extra = stage1_manifests(manifest_csv, extra_voices=extra_voices)
    rows = [r for r in read_manifest(manifest_csv) if kept(r)]
    for path in extra:
        if path.name == EXTRA_MUSIC_MANIFEST:
            rows += [{**r, "extra_music": "1"} for r in read_manifest(path)
                     if r["split"] == "train" and r["source"] not in HELDOUT_SOURCES and kept(r)]
        else:
            rows += _some_speakers([r for r in read_manifest(path) if r["split"] == "train" and r["label"] == "voice"
                                    and r["speaker"] and kept(r)], EXTRA_VOICE_SPEAKERS)
    return rows


def stage1_manifests(manifest_csv: Path, *, extra_voices: bool = False) -> list[Path]:
    """``manifest_csv`` and, when they lie beside it, :data:`EXTRA_MUSIC_MANIFEST` and (``extra_voices``)
    :data:`EXTRA_VOICE_MANIFEST`: the data manifests :func:`stage1_rows` reads (and a stage-1 model entry records)."""
    return manifests_beside(manifest_csv, (EXTRA_MUSIC_MANIFEST,) + ((EXTRA_VOICE_MANIFEST,) if extra_voices else ()))


def _source_group(row: dict[str, str], origin: str | None) -> str:
    """The unit that must not cross folds: the speaker for voice, the original recording for music and noise (the
    track for the extra music, whose ``speaker`` column holds the track id)."""
    import re

    if row["label"] == "voice" and row.get("speaker"):
        return "spk:" + row["speaker"]
    if row.get("extra_music"):
        return "track:" + (row.get("speaker") or row["path"])
    if origin:
        base = re.sub(r"\s*\[[0-9.]+-[0-9.]+ s\]\s*$", "", origin)
        us8k = re.search(r"UrbanSound8K .*/(\d+)-\d+-\d+-\d+\.wav", base)
        return "us8k:" + us8k.group(1) if us8k else "src:" + base
    return "path:" + row["path"]


class _Material:
    """Train-split clips by fold, decoded lazily (16 kHz mono float32)."""

    def __init__(self, rows: list[dict[str, str]], root: Path, *, n_folds: int, seed: int) -> None:
        origins = {}
        origin_csv = root / "clips_origin.csv"
        if origin_csv.is_file():
            origins = {r["path"]: r["origin"] for r in read_manifest(origin_csv)}
        self.root = root
        self.rows = [r for r in rows if r["split"] == "train"]
        groups = sorted({_source_group(r, origins.get(r["path"])) for r in self.rows})
        order = np.random.default_rng([seed, 7]).permutation(len(groups))
        fold_of_group = {groups[i]: k % n_folds for k, i in enumerate(order)}
        self.fold = {r["path"]: fold_of_group[_source_group(r, origins.get(r["path"]))] for r in self.rows}
        self.group = {r["path"]: _source_group(r, origins.get(r["path"])) for r in self.rows}
        self._cache: dict[str, np.ndarray] = {}

    def audio(self, rel: str) -> np.ndarray:
        if rel not in self._cache:
            self._cache[rel] = load_audio(self.root / rel)  # ffmpeg for the Opus files libsndfile refuses
        return self._cache[rel]

    def select(self, fold: int | None, label: str, subtypes: set[str] | None = None) -> list[dict[str, str]]:
        return [r for r in self.rows if r["label"] == label and (fold is None or self.fold[r["path"]] == fold)
                and (subtypes is None or r["subtype"] in subtypes)]
